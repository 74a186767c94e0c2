"""Lab widgets of the Layers panel: what one stage (ReLU, pooling, dropout, 1×1 conv) does.

Each widget provides ``bind(session)``, ``set_layer(name, row, module_type=None)``,
``applies_to(row, module_type=None) -> bool``, ``is_ready()``, ``mark_stale()`` and the
signals ``unit_hovered(object)`` ((layer, row, col) or None), ``ready`` and ``changed``.
:data:`LAB_WIDGETS` lists them as ``(name, tab title, class)``; ``name`` is the core lab
name (:data:`convviz.core.labs.LABS`), so ``--lab NAME`` picks the tab.
"""
from __future__ import annotations

from .dropout import DropoutLab
from .pointwise import PointwiseLab
from .pool import PoolLab
from .relu import ReluLab

LAB_WIDGETS = (("relu", "ReLU && co.", ReluLab), ("pool", "Pooling", PoolLab), ("dropout", "Dropout", DropoutLab),
               ("pointwise", "1×1 conv", PointwiseLab))

__all__ = ["LAB_WIDGETS", "ReluLab", "PoolLab", "DropoutLab", "PointwiseLab"]
