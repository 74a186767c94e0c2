"""A real Conv2d taken apart: its input, weights and output as plain numpy, and the dot
product behind any one output value.

:func:`conv_layer_data` turns a module plus the tensors it saw into a :class:`ConvLayerData`
(numpy only, safe to send across threads); :func:`probe` recomputes one output value from
it — window × weights per input channel of the group, plus bias — in float64, so it can be
compared with the model's own value. All four ``padding_mode`` values of Conv2d are
supported ('zeros', 'reflect', 'replicate', 'circular'), as are string padding ('same',
'valid'), groups / depthwise, dilation and non-square kernels and strides.

torch is imported inside the functions that need it, so the UI can import this module
(and :class:`ConvLayerData`) before torch has finished loading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from convviz.core.geometry.arithmetic import CONV, AxisGeometry, AxisSpec, analyse_axis
from convviz.core.geometry.padding import is_dynamic_same, real_padding

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True, eq=False)
class ConvLayerData:
    """Everything the Convolution panel shows of one Conv2d (batch item 0, float32).

    ``input`` is (C, H, W), ``output`` (O, H', W'), ``weight`` (O, C/groups, kh, kw),
    ``bias`` (O,) or None. ``padding`` is (top, bottom, left, right) after resolving
    'same' / 'valid'; ``padding_text`` is the module's own spelling. ``rf`` / ``jump`` /
    ``start`` are the receptive field of one output unit in image pixels, (h, w) pairs,
    when the caller knows them.
    """

    name: str
    input: np.ndarray
    output: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int = 1
    padding_mode: str = "zeros"
    padding_text: str = ""
    rf: tuple[float, float] | None = None
    jump: tuple[float, float] | None = None
    start: tuple[float, float] | None = None
    image_hw: tuple[int, int] | None = None  #: the model input (H, W) the field is measured on

    @property
    def in_channels(self) -> int:
        return int(self.input.shape[0])

    @property
    def out_channels(self) -> int:
        return int(self.output.shape[0])

    @property
    def depthwise(self) -> bool:
        """One input channel per group (EfficientNet's ``conv_dw``)."""
        return self.groups > 1 and self.groups == self.in_channels

    def group_of(self, out_channel: int) -> int:
        """Group index that output channel ``out_channel`` belongs to."""
        return out_channel // (self.out_channels // self.groups)

    def input_channels_for(self, out_channel: int) -> range:
        """Input channels whose values feed output channel ``out_channel``."""
        per_group = self.in_channels // self.groups
        first = self.group_of(out_channel) * per_group
        return range(first, first + per_group)

    def axes(self) -> tuple[AxisGeometry, AxisGeometry]:
        """Window geometry along rows and columns (see :mod:`convviz.core.geometry.arithmetic`)."""
        top, bottom, left, right = self.padding
        rows = AxisSpec(self.input.shape[1], self.kernel_size[0], self.stride[0], top, bottom, self.dilation[0], CONV)
        cols = AxisSpec(self.input.shape[2], self.kernel_size[1], self.stride[1], left, right, self.dilation[1], CONV)
        return analyse_axis(rows), analyse_axis(cols)

    def tap_indices(self, row: int, col: int) -> tuple[np.ndarray, np.ndarray]:
        """Input row indices (kh,) and column indices (kw,) read by output (row, col);
        values outside ``0 … H−1`` / ``0 … W−1`` fall in the padding."""
        rows = row * self.stride[0] - self.padding[0] + self.dilation[0] * np.arange(self.kernel_size[0])
        cols = col * self.stride[1] - self.padding[2] + self.dilation[1] * np.arange(self.kernel_size[1])
        return rows, cols

    def padded_channel(self, channel: int) -> np.ndarray:
        """Input channel ``channel`` with its padding ring filled as the layer fills it."""
        top, bottom, left, right = self.padding
        mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[self.padding_mode]
        return np.pad(self.input[channel], ((top, bottom), (left, right)), mode=mode)


@dataclass(frozen=True, eq=False)
class ConvProbe:
    """One output value recomputed: ``Σ_c Σ windows[c] × weights[c] + bias == total``.

    ``windows`` / ``weights`` are (n, kh, kw) for the n input channels ``in_channels`` of
    the group; ``inside`` (kh, kw) is False where a tap reads padding; ``model_value`` is
    what the layer itself produced at that position.
    """

    out_channel: int
    row: int
    col: int
    in_channels: tuple[int, ...]
    tap_rows: np.ndarray
    tap_cols: np.ndarray
    inside: np.ndarray
    windows: np.ndarray
    weights: np.ndarray
    bias: float
    partial_sums: np.ndarray
    total: float
    model_value: float

    @property
    def error(self) -> float:
        """``|total − model_value|``."""
        return abs(self.total - self.model_value)


def _wrap(index: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Map padded tap indices into the input the way ``padding_mode`` fills the ring."""
    if mode == "reflect":
        period = 2 * (size - 1) if size > 1 else 1
        index = np.mod(index, period)
        return np.where(index >= size, period - index, index)
    if mode == "circular":
        return np.mod(index, size)
    return np.clip(index, 0, size - 1)  # zeros (masked later) and replicate


def probe(data: ConvLayerData, out_channel: int, row: int, col: int) -> ConvProbe:
    """Recompute output ``(out_channel, row, col)`` of ``data`` from its window and weights."""
    rows, cols = data.tap_indices(row, col)
    _, height, width = data.input.shape
    inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
    channels = data.input_channels_for(out_channel)
    r = _wrap(rows, height, data.padding_mode)
    c = _wrap(cols, width, data.padding_mode)
    windows = data.input[channels.start:channels.stop][:, r[:, None], c[None, :]].astype(np.float64)
    if data.padding_mode == "zeros":
        windows = np.where(inside[None], windows, 0.0)
    weights = data.weight[out_channel].astype(np.float64)
    partial = (windows * weights).sum(axis=(1, 2))
    bias = float(data.bias[out_channel]) if data.bias is not None else 0.0
    return ConvProbe(out_channel, row, col, tuple(channels), rows, cols, inside, windows, weights, bias,
                     partial, float(partial.sum() + bias), float(data.output[out_channel, row, col]))


def _output_shape(size_in, module: nn.Conv2d, padding) -> tuple[int, int]:
    """(H', W') the geometry predicts for ``module`` with ``padding`` (0 when refused)."""
    return tuple(analyse_axis(AxisSpec(n, k, s, lo, hi, d, CONV)).output for n, k, s, lo, hi, d in
                 zip(size_in, module.kernel_size, module.stride, padding[0::2], padding[1::2], module.dilation))


def _numpy(tensor: torch.Tensor, batch_item: bool = False) -> np.ndarray:
    """float32 numpy copy; ``batch_item`` drops the batch axis of a (1, C, H, W) activation."""
    array = tensor.detach().to("cpu", copy=False).float()
    if batch_item and array.dim() == 4:
        array = array[0]
    return np.ascontiguousarray(array.numpy())


def conv_layer_data(module: nn.Conv2d, name: str, layer_input: torch.Tensor, layer_output: torch.Tensor,
                    rf=None, jump=None, start=None, image_hw=None) -> ConvLayerData:
    """Plain-numpy copy of ``module`` and the (1, C, H, W) input / (1, O, H', W') output it saw."""
    if module.padding_mode not in PADDING_MODES:
        raise ValueError(f"{name}: padding_mode {module.padding_mode!r} is not one of {PADDING_MODES}")
    bias = None if module.bias is None else _numpy(module.bias)
    size_in, size_out = tuple(layer_input.shape[-2:]), tuple(layer_output.shape[-2:])
    padding = real_padding(module, size_in)
    padding_text = ("TF 'SAME' (timm's Conv2dSame pads in forward)" if is_dynamic_same(module) else
                    repr(module.padding) if isinstance(module.padding, str) else str(tuple(module.padding)))
    if _output_shape(size_in, module, padding) != size_out:
        raise ValueError(f"{name}: output {size_out} does not follow from input {size_in} with the "
                         f"module's kernel, stride, padding and dilation")
    return ConvLayerData(
        name=name, input=_numpy(layer_input, True), output=_numpy(layer_output, True), weight=_numpy(module.weight),
        bias=bias, kernel_size=tuple(module.kernel_size), stride=tuple(module.stride),
        padding=padding, dilation=tuple(module.dilation), groups=int(module.groups),
        padding_mode=module.padding_mode, padding_text=padding_text, rf=rf, jump=jump, start=start,
        image_hw=None if image_hw is None else tuple(int(n) for n in image_hw))


def probe_module(module: nn.Conv2d, layer_input: torch.Tensor, layer_output: torch.Tensor, out_channel: int,
                 row: int, col: int) -> ConvProbe:
    """:func:`probe` straight from a module and the tensors it saw."""
    return probe(conv_layer_data(module, "", layer_input, layer_output), out_channel, row, col)
