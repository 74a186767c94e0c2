"""The first convolution's filters as small RGB pictures ("early filters detect edges and colours").

A first-layer filter has one weight per input colour channel and tap, so it can be drawn
as a tiny RGB image: 0 is mid-grey, positive weights brighten a colour, negative ones
darken it (the filter responds to that colour pattern). Weights act on the *normalised*
input, so the picture shows the filter's preference relative to the mean colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from ..geometry.padding import real_padding
from .registry import ViewContext, view


@dataclass(frozen=True)
class FirstFilters:
    """Weights of the first Conv2d that reads the image, and one RGB picture per filter."""

    layer: str
    weights: np.ndarray  #: (C_out, C_in, kH, kW) float32, exactly the module's weight
    bias: np.ndarray | None  #: (C_out,) or None
    rgb: np.ndarray  #: (C_out, kH, kW, 3) uint8; mid-grey is 0
    scale: np.ndarray  #: (C_out,) the |weight| that maps to full brightness (per filter or shared)
    shared: bool
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  #: (top, bottom, left, right) as the layer pads the model input


def first_image_conv(model: nn.Module, call_order, in_channels: int = 3) -> tuple[str, nn.Conv2d] | None:
    """(name, module) of the first Conv2d in ``call_order`` that reads ``in_channels`` channels, groups 1."""
    modules = dict(model.named_modules())
    for name in call_order:
        module = modules.get(name.split(":")[0])
        if isinstance(module, nn.Conv2d) and module.groups == 1 and module.in_channels == in_channels:
            return name, module
    return None


def filter_pictures(weights: np.ndarray, shared: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(C_out, C_in, kH, kW) weights → ((C_out, kH, kW, 3) uint8 pictures, (C_out,) scales).

    Each filter is scaled by its own largest |weight| (or the layer's, ``shared``) so that
    0 → 128, +max → 255, −max → 0. Three input channels are drawn as R, G, B; any other
    count as grey from their mean.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4:
        raise ValueError(f"expected (C_out, C_in, kH, kW) weights, got shape {w.shape}")
    if w.shape[1] != 3:
        w = np.repeat(w.mean(axis=1, keepdims=True), 3, axis=1)
    peak = np.abs(w).max(axis=(1, 2, 3))
    if shared:
        peak = np.full_like(peak, peak.max(initial=0.0))
    scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
    unit = 0.5 + 0.5 * w / scale[:, None, None, None]
    rgb = np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(rgb), scale


@view("first_filters")
def first_filters(ctx: ViewContext, shared: bool = False) -> FirstFilters:
    """The filters of the model's first image-reading convolution (the layer argument is ignored)."""
    found = first_image_conv(ctx.model.module, list(ctx.capture.outputs))
    if found is None:
        raise ValueError("this model has no Conv2d that reads the 3 colour channels")
    name, module = found
    weights = module.weight.detach().float().cpu().numpy().copy()
    rgb, scale = filter_pictures(weights, shared)
    bias = None if module.bias is None else module.bias.detach().float().cpu().numpy().copy()
    size = int(ctx.model.preprocess.input_size)
    padding = real_padding(module, (size, size))  # TF "SAME" depends on the input size
    return FirstFilters(layer=name, weights=weights, bias=bias, rgb=rgb, scale=scale, shared=bool(shared),
                        stride=tuple(int(s) for s in module.stride), padding=padding)
