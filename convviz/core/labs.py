"""Labs: what one stage of a CNN does, on the tensors captured in the forward pass.

Four labs, each a view (:mod:`convviz.core.views`) computed from the activation cache —
changing a lab's settings never runs the model again:

============  ================  =======================================================
lab           view kind         applies to
============  ================  =======================================================
``relu``      ``relu_lab``      ReLU, ReLU6, SiLU, Hardswish, timm's BatchNormAct2d
``pool``      ``pool_lab``      any (C, H, W) map (a pooling layer: its input)
``dropout``   ``dropout_lab``   any map or vector (a Dropout layer: its input)
``pointwise`` ``pointwise_lab`` Conv2d with a 1×1 kernel, groups 1
============  ================  =======================================================

The computations live in ``labs_activation``, ``labs_pool``, ``labs_dropout`` and
``labs_pointwise``; this module decides which lab applies where and registers the views.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from .lab_names import ACTIVATION_TYPES, DROPOUT_TYPE_NAMES, LABS, POOL_TYPE_NAMES, VIEW_KIND
from .labs_activation import ActivationLab, activation_name, capture_activation_lab
from .labs_dropout import DropoutLab, dropout_kind, dropout_lab
from .labs_pointwise import PointwiseLab, is_pointwise, pointwise_lab
from .labs_pool import PoolLab, pool_lab
from .views import ViewContext, view

POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)
assert tuple(t.__name__ for t in POOL_TYPES) == POOL_TYPE_NAMES

__all__ = ["LABS", "VIEW_KIND", "ActivationLab", "PoolLab", "DropoutLab", "PointwiseLab",
           "lab_for", "first_layer_for_lab"]


def _is_map(shape) -> bool:
    return shape is not None and len(shape) == 3 and min(shape) >= 1


def lab_for(layer, module: nn.Module | None = None) -> tuple[str, ...]:
    """The labs (of :data:`LABS`) that apply to ``layer``: a LayerRow or an ``nn.Module``.

    With a :class:`~convviz.core.layer_table.LayerRow` alone, a ``BatchNormAct2d`` is not
    offered the ReLU lab (the row cannot tell whether its ``act`` is Identity); pass its
    ``module`` too. Pooling applies to any (C, H, W) output, dropout to any map or vector.
    """
    if isinstance(layer, nn.Module):
        module = layer
        shape = None
        type_name = type(layer).__name__
        kernel, groups = None, None
    else:
        shape, type_name = tuple(layer.out_shape), layer.type
        kernel, groups = layer.kernel, layer.groups
    labs = []
    if (module is not None and activation_name(module)) or (module is None and type_name in ACTIVATION_TYPES):
        labs.append("relu")
    if _is_map(shape) or isinstance(module, POOL_TYPES) or type_name in POOL_TYPE_NAMES:
        labs.append("pool")
    if (shape is not None and len(shape) in (1, 3)) or type_name in DROPOUT_TYPE_NAMES:
        labs.append("dropout")
    if (module is not None and is_pointwise(module)) or (
            module is None and type_name == "Conv2d" and kernel == (1, 1) and groups == 1):
        labs.append("pointwise")
    return tuple(labs)


def first_layer_for_lab(layers, lab: str) -> str | None:
    """Name of the first layer where ``lab`` applies, or None.

    ``layers`` is a list of LayerRows (model call order) or ``(name, module)`` pairs
    (``model.named_modules()``). For ``pool`` and ``dropout`` a real pooling / Dropout
    layer is preferred; without one (EfficientNet-Lite0 has no MaxPool) the first layer
    with a (C, H, W) map is chosen — with modules only, the first Conv2d.
    """
    if lab not in LABS:
        raise ValueError(f"unknown lab {lab!r} (one of {', '.join(LABS)})")
    items = []
    for item in layers:
        if isinstance(item, tuple):
            name, module = item
            if name:
                items.append((name, lab_for(module), type(module).__name__, isinstance(module, nn.Conv2d)))
        else:
            items.append((item.name, lab_for(item), item.type, _is_map(item.out_shape)))
    if lab in ("pool", "dropout"):
        own = POOL_TYPE_NAMES if lab == "pool" else DROPOUT_TYPE_NAMES
        for name, _, type_name, _ in items:
            if type_name in own:
                return name
        for name, _, _, is_map in items:
            if is_map:
                return name
        return None
    for name, labs, _, _ in items:
        if lab in labs:
            return name
    return None


# ---- views ------------------------------------------------------------------------
@view("relu_lab")
def relu_lab_view(ctx: ViewContext, channel: int = 0, bins: int = 64) -> ActivationLab:
    """Pre-activation vs activation of ``ctx.layer`` (ReLU, ReLU6, SiLU, Hardswish, BatchNormAct2d)."""
    name = ctx.require_layer()
    if ctx.module is None:
        raise ValueError(f"{name}: no module to take the activation from")
    return capture_activation_lab(ctx.capture, name, ctx.module, int(channel), int(bins))


@view("pool_lab")
def pool_lab_view(ctx: ViewContext, channel: int = 0, kernel: int | None = None, stride: int | None = None,
                  padding: int | None = None, ceil_mode: bool | None = None, source: str = "auto") -> PoolLab:
    """Max / average / L2 pooling of one channel of the layer's map.

    ``source="auto"``: a pooling layer's input, with the layer's own kernel / stride /
    padding / ceil_mode as defaults; any other layer's output, with 2×2, stride 2.
    """
    name = ctx.require_layer()
    is_pool = isinstance(ctx.module, POOL_TYPES) and name in ctx.capture.inputs
    if source not in ("auto", "input", "output"):
        raise ValueError(f"source must be 'auto', 'input' or 'output' (got {source!r})")
    use_input = source == "input" or (source == "auto" and is_pool)
    maps = ctx.input() if use_input else ctx.output()
    defaults = dict(kernel=2, stride=None, padding=0, ceil_mode=False)
    if is_pool:
        m = ctx.module
        first = lambda v: int(v[0] if isinstance(v, (tuple, list)) else v)  # noqa: E731
        defaults = dict(kernel=first(m.kernel_size), stride=first(m.stride or m.kernel_size),
                        padding=first(getattr(m, "padding", 0)), ceil_mode=bool(m.ceil_mode))
    given = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    settings = {key: defaults[key] if value is None else value for key, value in given.items()}
    include_pad = bool(getattr(ctx.module, "count_include_pad", True)) if is_pool else True  # an AvgPool2d's own
    return pool_lab(name, maps, settings["kernel"], settings["stride"], settings["padding"],
                    bool(settings["ceil_mode"]), int(channel), "input" if use_input else "output", include_pad)


@view("dropout_lab")
def dropout_lab_view(ctx: ViewContext, p: float | None = None, seed: int = 0, train: bool = True,
                     channel: int = 0, dropout: str | None = None) -> DropoutLab:
    """Dropout (train or eval) of a Dropout layer's input (its own ``p`` and kind by default) or any
    layer's output (``Dropout``, p = 0.5 by default); ``dropout`` is one of ``DROPOUT_KINDS``."""
    name = ctx.require_layer()
    is_dropout = isinstance(ctx.module, nn.modules.dropout._DropoutNd) and name in ctx.capture.inputs
    values = ctx.capture.inputs[name][0] if is_dropout else ctx.capture.output(name)[0]
    if p is None:
        p = float(ctx.module.p) if is_dropout else 0.5
    if dropout is None:
        dropout = (dropout_kind(ctx.module) if is_dropout else None) or "Dropout"
    return dropout_lab(name, values, float(p), int(seed), bool(train), int(channel), dropout)


@view("pointwise_lab")
def pointwise_lab_view(ctx: ViewContext, channel: int = 0, top: int = 6) -> PointwiseLab:
    """Output ``channel`` of a 1×1 conv as the weighted sum of its input channels."""
    name = ctx.require_layer()
    if ctx.module is None or name not in ctx.capture.inputs:
        raise ValueError(f"{name}: not a convolution of this model")
    return pointwise_lab(name, ctx.module, ctx.capture.inputs[name], ctx.capture.output(name), int(channel), int(top))
