"""Words of the Convolution panel's real layer (no Qt, no torch): the layer's settings and
output-size arithmetic, which input channels feed an output, the value range of a map,
and a short hint per layer for the layer list.
"""
from __future__ import annotations

import numpy as np

from convviz.core.geometry.conv_probe import ConvLayerData
from convviz.core.geometry.arithmetic import fraction_text, ranges_text
from convviz.core.capture.unit_field import unit_field


def value_range(values: np.ndarray) -> str:
    """``values −2.12 … 2.64`` (typographic minus)."""
    if values.size == 0:
        return "no values"
    return f"values {float(values.min()):.2f} … {float(values.max()):.2f}".replace("-", "−")


def layer_hint(row) -> str:
    """``3×3 depthwise, stride 2 → 32 ch`` for a LayerRow of a Conv2d (kernel, type, stride, channels)."""
    parts = []
    if row.kernel is not None:
        kh, kw = row.kernel
        kind = ""
        groups = row.groups or 1
        out = row.out_shape[0] if row.out_shape else None
        if groups > 1 and groups == out:
            kind = " depthwise"
        elif groups > 1:
            kind = f" grouped ({groups})"
        elif (kh, kw) == (1, 1):
            kind = " pointwise"
        parts.append(f"{kh}×{kw}{kind}")
    if row.stride is not None and max(row.stride) > 1:
        parts.append(f"stride {row.stride[0]}" if row.stride[0] == row.stride[1] else f"stride {row.stride}")
    text = ", ".join(parts)
    if row.out_shape:
        text += f" → {row.out_shape[0]} ch"
    return text.strip()


def robust_limit(values: np.ndarray) -> float:
    """Colour scale limit: the 99.5th percentile of |values| (a few outliers don't wash it out)."""
    limit = float(np.percentile(np.abs(values), 99.5)) if values.size else 0.0
    return limit if limit > 0 else float(np.abs(values).max(initial=0.0)) or 1.0


def layer_summary(data: ConvLayerData) -> str:
    """Shape, settings and the output-size arithmetic of a real layer, as HTML."""
    (kh, kw), (sh, sw), (dh, dw) = data.kernel_size, data.stride, data.dilation
    c, h, w = data.input.shape
    o, oh, ow = data.output.shape
    lines = [f"<b>Conv2d</b> {c} → {o} channels, kernel {kh}×{kw}, stride {sh}×{sw}, "
             f"dilation {dh}×{dw}, groups {data.groups}",
             padding_line(data),
             f"input {c}×{h}×{w} → output <b>{o}×{oh}×{ow}</b>",
             (f"input = the normalised photo, (pixel/255 − mean)/std per RGB channel: {value_range(data.input)}"
              if c == 3 else f"input {value_range(data.input)}; output {value_range(data.output)}")]
    for axis, geom in zip(("rows", "columns"), data.axes()):
        s = geom.spec
        text = (f"{axis}: ({s.size} + {s.pad_lo} + {s.padding_end} − {s.span})/{s.stride} + 1 = "
                f"{fraction_text(geom.exact)}")
        if not geom.is_whole:
            text += f" → floor {geom.output}"
        if geom.uncovered:
            text += f"; input {axis} {ranges_text(geom.uncovered)} never read"
        lines.append(text)
    if data.rf is not None:
        lines.append(field_line(data))
    return "<br>".join(lines)


def padding_line(data: ConvLayerData) -> str:
    """The padding the layer really applies, per side, and when it is uneven which side gets more:
    ``TF SAME: 0 before, 1 after`` (timm's Conv2dSame; PyTorch's 'same' splits an odd total so too)."""
    top, bottom, left, right = data.padding
    text = (f"padding {data.padding_text or data.padding} → top/bottom {top}/{bottom}, left/right {left}/{right}"
            + (f" ({data.padding_mode})" if data.padding_mode != "zeros" else ""))
    if (top, left) == (bottom, right):
        return text
    axes = {"rows": (top, bottom), "columns": (left, right)}
    if len(set(axes.values())) == 1:
        split = f"{top} before, {bottom} after"
    else:
        split = "; ".join(f"{name} {a} before, {b} after" for name, (a, b) in axes.items())
    tf_like = all(b - a in (0, 1) for a, b in axes.values())  # TF SAME: before = ⌊total/2⌋, after = the rest
    rule = "TF SAME" if tf_like else "uneven"
    where = ("the extra row/column goes after (bottom / right)" if tf_like else
             "not TensorFlow's 'SAME' split, which puts at most one extra cell after")
    return text + f" — <b>{rule}: {split}</b>: {where}; the input's padding ring is drawn so"


def seen_extent(data: ConvLayerData) -> tuple[tuple[int, int], tuple[int, int]]:
    """(fewest, most) real pixels, rows and columns, that the field of one of the layer's output units
    covers on the model input (:func:`convviz.core.capture.unit_field.unit_field`: the field clipped to the input)."""
    (_, oh, ow), seen = data.output.shape, []
    for index in range(max(oh, ow)):
        seen.append(unit_field(data, min(index, oh - 1), min(index, ow - 1), data.image_hw).seen_hw)
    rows, cols = [s[0] for s in seen], [s[1] for s in seen]
    return (min(rows), min(cols)), (max(rows), max(cols))


def field_line(data: ConvLayerData) -> str:
    """The theoretical field and the real pixels a unit can see (never more than the input has)."""
    (fh, fw), jump = data.rf, data.jump
    neighbours = f", neighbours {jump[0]:g} px apart" if jump is not None else ""
    text = f"theoretical receptive field of one output unit: {fh:g}×{fw:g} image pixels{neighbours}"
    if data.image_hw is None or jump is None or data.start is None:
        return text
    h, w = data.image_hw
    (lh, lw), (sh, sw) = seen_extent(data)
    if (sh, sw) == (h, w) and (fh > h or fw > w):
        return text + (f"; larger than the {h}×{w} input, so a unit sees at most the whole input "
                       f"({h}×{w} real pixels) and the rest of its field is padding")
    if (lh, lw) == (fh, fw):
        return text + "; every unit sees all of it (no field reaches into padding)"
    if (sh, sw) == (fh, fw):
        return text + (f"; units away from the border see all of it, units at the border as few as {lh}×{lw} "
                       f"real pixels (the rest is padding)")
    return text + f"; on this {h}×{w} input a unit sees at most {sh}×{sw} real pixels, the rest is padding"


def groups_summary(data: ConvLayerData, out_channel: int) -> str:
    """Which input channels feed ``out_channel``, in words."""
    feed = data.input_channels_for(out_channel)
    if data.depthwise:
        return (f"<b>Depthwise</b> (groups = in_channels = {data.groups}): output channel {out_channel} "
                f"reads only input channel {feed.start}; there is no sum across channels.")
    if data.groups > 1:
        return (f"<b>Grouped</b> (groups = {data.groups}): output channel {out_channel} is in group "
                f"{data.group_of(out_channel)} and reads input channels {feed.start}–{feed.stop - 1} "
                f"({len(feed)} of {data.in_channels}).")
    return (f"Every output channel reads all {data.in_channels} input channel{'s' * (data.in_channels > 1)}; "
            f"the picture shows one of them, the value sums them all.")
