"""Lab widgets of the Layers panel: what one stage (ReLU, pooling, dropout, 1×1 conv) does.

Each widget provides ``bind(session)``, ``set_layer(name, row, module_type=None)``,
``applies_to(row, module_type=None) -> bool``, ``is_ready()``, ``mark_stale()`` and the
signals ``unit_hovered(object)`` ((layer, row, col) or None), ``ready`` and ``changed``.
:data:`LAB_WIDGETS` lists them as ``(name, tab title, class)`` in the order of the core's one
table of lab names (:data:`convviz.core.labs.names.LABS`), so ``--lab NAME`` picks the tab.
"""
from __future__ import annotations

from convviz.core.labs.names import LABS

from .dropout import DropoutLab
from .pointwise import PointwiseLab
from .pool import PoolLab
from .relu import ReluLab

_TABS = {cls.NAME: (title, cls) for title, cls in (
    ("ReLU && co.", ReluLab), ("Pooling", PoolLab), ("Dropout", DropoutLab), ("1×1 conv", PointwiseLab))}
LAB_WIDGETS = tuple((name, *_TABS[name]) for name in LABS)
assert len(_TABS) == len(LABS), "a lab widget whose NAME is not in convviz.core.labs.names.LABS"

__all__ = ["LAB_WIDGETS", "ReluLab", "PoolLab", "DropoutLab", "PointwiseLab"]
