"""Labs: what one stage of a CNN does, on the tensors captured in the forward pass.

Four labs, each a view (:mod:`convviz.core.views.registry`) computed from the activation cache —
changing a lab's settings never runs the model again:

============  ================  =======================================================
lab           view kind         applies to
============  ================  =======================================================
``relu``      ``relu_lab``      ReLU, ReLU6, SiLU, Hardswish, timm's BatchNormAct2d
``pool``      ``pool_lab``      any (C, H, W) map (a pooling layer: its input)
``dropout``   ``dropout_lab``   any map or vector (a Dropout layer: its input)
``pointwise`` ``pointwise_lab`` Conv2d with a 1×1 kernel, groups 1, no padding
============  ================  =======================================================

The computations live in ``labs_activation``, ``labs_pool``, ``labs_dropout`` and
``labs_pointwise``; which lab applies where is :mod:`.lab_names`' (torch-free, the lab widgets
read it too); this module registers the views.
"""
from __future__ import annotations

from torch import nn

from .names import (
    ACTIVATION_TYPES, DROPOUT_TYPE_NAMES, LABS, POOL_TYPE_NAMES, VIEW_KIND, first_row_for_lab, labs_for, row_labs,
)
from .activation import ACTIVATIONS, ActivationLab, capture_activation_lab, is_batchnorm_act
from .dropout import DropoutLab, dropout_kind, dropout_lab
from .pointwise import PointwiseLab, pointwise_lab
from .pool import PoolLab, pool_lab
from ..views.registry import ViewContext, view

POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)
assert tuple(t.__name__ for t in POOL_TYPES) == POOL_TYPE_NAMES
assert tuple(ACTIVATIONS) == ACTIVATION_TYPES

__all__ = ["LABS", "VIEW_KIND", "ActivationLab", "PoolLab", "DropoutLab", "PointwiseLab",
           "lab_for", "first_layer_for_lab"]


def lab_for(layer, module: nn.Module | None = None) -> tuple[str, ...]:
    """The labs (of :data:`LABS`) that apply to ``layer``: a LayerRow or an ``nn.Module``.

    The rules are :func:`~convviz.core.labs.names.labs_for`'s (the lab widgets read the same). With a
    LayerRow alone a ``BatchNormAct2d`` is not offered the ReLU lab (the row cannot tell whether its
    ``act`` is Identity): pass its ``module``, or ask :func:`~convviz.core.labs.names.row_labs` with
    the act's type from the rows.
    """
    if isinstance(layer, nn.Module):
        module = layer
        conv = isinstance(module, nn.Conv2d)
        return labs_for(type(module).__name__, None, tuple(module.kernel_size) if conv else None,
                        module.groups if conv else None, _module_pads(module) if conv else None, _act_type(module))
    return row_labs(layer, act_type=_act_type(module) if module is not None else None)


def _act_type(module: nn.Module) -> str | None:
    return type(module.act).__name__ if is_batchnorm_act(module) else None


def _module_pads(conv: nn.Conv2d) -> tuple[int, ...]:
    """A Conv2d's padding as (top, bottom, left, right) as far as the module alone tells
    (``'same'`` pads nothing with a 1×1 kernel; anything else is reported as non-zero)."""
    padding = conv.padding
    if padding == "valid" or (padding == "same" and tuple(conv.kernel_size) == (1, 1)):
        return (0, 0, 0, 0)
    if isinstance(padding, str):
        return (1, 1, 1, 1)
    return (padding[0], padding[0], padding[1], padding[1])


def first_layer_for_lab(layers, lab: str) -> str | None:
    """Name of the first layer where ``lab`` applies, or None.

    ``layers`` is a list of LayerRows (model call order: :func:`~convviz.core.labs.names.first_row_for_lab`,
    as the Layers panel's ``--lab``) or ``(name, module)`` pairs (``model.named_modules()``). For ``pool``
    and ``dropout`` a real pooling / Dropout layer is preferred; without one (EfficientNet-Lite0 has no
    MaxPool) the first layer with a (C, H, W) map is chosen — with modules only, the first Conv2d.
    """
    layers = list(layers)
    if not layers or not isinstance(layers[0], tuple):
        return first_row_for_lab(layers, lab)
    if lab not in LABS:
        raise ValueError(f"unknown lab {lab!r} (one of {', '.join(LABS)})")
    named = [(name, module) for name, module in layers if name]
    if lab in ("pool", "dropout"):
        own = POOL_TYPE_NAMES if lab == "pool" else DROPOUT_TYPE_NAMES
        found = next((name for name, module in named if type(module).__name__ in own), None)
        return found or next((name for name, module in named if isinstance(module, nn.Conv2d)), None)
    return next((name for name, module in named if lab in lab_for(module)), None)


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
