"""1×1 convolution lab ("network in network"): a weight matrix applied at every pixel.

A Conv2d with a 1×1 kernel (groups 1) maps the C_in values at each pixel to C_out values
with one C_out × C_in matrix: output channel ``o`` is ``Σ_c W[o, c] · input[c] + b[o]``.
:func:`pointwise_lab` rebuilds one output channel that way from the captured input and
shows which input channels contribute most.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class PointwiseLab:
    """One output channel of a 1×1 conv as a weighted sum of input channels."""

    layer: str
    weight: np.ndarray  #: (C_out, C_in) — the whole layer as a matrix
    bias: np.ndarray | None  #: (C_out,)
    out_channel: int
    stride: int
    top_channels: tuple[int, ...]  #: input channels with the largest mean |contribution|, largest first
    top_weights: tuple[float, ...]
    top_maps: np.ndarray  #: (k, H', W'): weight × input channel, for ``top_channels``
    rest_map: np.ndarray  #: (H', W'): the sum of every other channel's contribution
    bias_value: float
    weighted_sum: np.ndarray  #: (H', W'): Σ_c W[o, c]·input[c] + b[o], recomputed here (float64 → float32)
    model_output: np.ndarray  #: (H', W'): what the layer produced
    max_abs_error: float
    in_shape: tuple[int, int, int]  #: (C_in, H, W)
    out_shape: tuple[int, int, int]  #: (C_out, H', W')
    shape_text: str  #: ``56×56×192 → 56×56×64``
    params_text: str  #: ``64·(192 + 1) = 12352 parameters (weights + biases)``


def is_pointwise(module: nn.Module) -> bool:
    """A 2-D convolution with a 1×1 kernel, groups 1 and no padding."""
    return (isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1) and module.groups == 1
            and module.padding in ((0, 0), "valid", "same"))  # 'same' pads nothing with a 1×1 kernel


@torch.no_grad()
def pointwise_lab(layer: str, module: nn.Module, layer_input: torch.Tensor, layer_output: torch.Tensor,
                  out_channel: int = 0, top: int = 6) -> PointwiseLab:
    """Lab data of 1×1 conv ``module`` from the (C_in, H, W) input and (C_out, H', W') output it saw."""
    if not is_pointwise(module):
        raise ValueError(f"{layer}: {type(module).__name__} is not a 1×1 convolution with groups 1 and no padding")
    x = layer_input.detach().double()
    y = layer_output.detach().float()
    if x.dim() == 4:
        x, y = x[0], y[0]
    c_out, c_in = int(module.out_channels), int(module.in_channels)
    if not 0 <= int(out_channel) < c_out:
        raise ValueError(f"{layer}: output channel {out_channel} does not exist (0–{c_out - 1})")
    if not 1 <= int(top) <= c_in:
        top = max(1, min(int(top), c_in))
    sh, sw = module.stride
    x = x[:, ::sh, ::sw]
    if tuple(x.shape[1:]) != tuple(y.shape[1:]):
        raise ValueError(f"{layer}: output {tuple(y.shape[1:])} does not follow from input {tuple(x.shape[1:])}")
    weight = module.weight.detach()[:, :, 0, 0]
    bias = None if module.bias is None else module.bias.detach().float()
    o = int(out_channel)
    contributions = weight[o].double()[:, None, None] * x  # (C_in, H', W')
    strength = contributions.abs().mean(dim=(1, 2))
    order = torch.argsort(strength, descending=True, stable=True)[: int(top)]
    b = 0.0 if bias is None else float(bias[o])
    total = contributions.sum(dim=0) + b
    rest = contributions.sum(dim=0) - contributions[order].sum(dim=0)
    h, w = int(layer_input.shape[-2]), int(layer_input.shape[-1])
    oh, ow = int(y.shape[1]), int(y.shape[2])
    n_bias = c_out if bias is not None else 0
    params = (f"{c_out}·({c_in} + 1) = {c_out * c_in + n_bias} parameters (weights + biases)" if bias is not None
              else f"{c_out}·{c_in} = {c_out * c_in} weights (no bias)")
    return PointwiseLab(
        layer=layer, weight=weight.float().numpy().copy(), bias=None if bias is None else bias.numpy().copy(),
        out_channel=o, stride=int(sh), top_channels=tuple(int(i) for i in order),
        top_weights=tuple(float(weight[o, i]) for i in order),
        top_maps=contributions[order].float().numpy(), rest_map=rest.float().numpy(), bias_value=b,
        weighted_sum=total.float().numpy(), model_output=y[o].numpy().copy(),
        max_abs_error=float((total - y[o].double()).abs().max()), in_shape=(c_in, h, w), out_shape=(c_out, oh, ow),
        shape_text=f"{h}×{w}×{c_in} → {oh}×{ow}×{c_out}", params_text=params,
    )
