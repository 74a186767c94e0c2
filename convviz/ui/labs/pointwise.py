"""1×1 convolution lab ("network in network"): one matrix applied at every pixel.

Left, the layer's C_out × C_in weight matrix (blue negative, red positive) with the chosen
output channel's row outlined. Right, that output channel as the weighted sum it is: the
largest contributions ``w · input channel`` as small maps with their weights, the rest,
the bias, the sum and the model's own output (all on one colour scale), with the error.
"""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget

from ..widgets.sections import text_label
from .base import LabWidget
from .maps import DIVERGING, MapGrid, fmt, symmetric

MAX_TOP = 8
COLUMNS = 4


class PointwiseLab(LabWidget):
    """Lab ``pointwise``: the weight matrix and one output channel as Σ w·input + b."""

    NAME = "pointwise"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("Select a 1×1 convolution (kernel 1×1, groups 1).")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.shapes = text_label(rich=True)
        self.channel = QSpinBox()
        self.channel.setPrefix("output channel ")
        self.channel.setToolTip("Which output channel to write as a weighted sum of the input channels")
        self.top = QSpinBox()
        self.top.setRange(1, MAX_TOP)
        self.top.setValue(6)
        self.top.setPrefix("largest ")
        self.top.setSuffix(" contributors")
        self.channel.valueChanged.connect(lambda _v: self.request())
        self.top.valueChanged.connect(lambda _v: self.request())
        controls = QHBoxLayout()
        controls.addWidget(self.channel)
        controls.addWidget(self.top)
        controls.addStretch(1)

        self.matrix = MapGrid()
        self.matrix_cell = self.matrix.add_map("weights", "weights W (C_out × C_in)", 0, 0)
        self.matrix_cell.view.setAspectLocked(False)
        self.matrix.setMinimumSize(220, 220)
        self.matrix.hovered.connect(self._matrix_hovered)
        self.sum = MapGrid()
        self.sum.setMinimumSize(480, 300)
        self.tiles = [self.sum.add_map(f"top{i}", "", i // COLUMNS, i % COLUMNS) for i in range(MAX_TOP)]
        last = MAX_TOP // COLUMNS
        self.rest = self.sum.add_map("rest", "rest", last, 0)
        self.total = self.sum.add_map("sum", "= Σ + bias", last, 1)
        self.model = self.sum.add_map("model", "model output", last, 2)
        self.sum.hovered.connect(self._sum_hovered)
        body = QHBoxLayout()
        body.addWidget(self.matrix, 2)
        body.addWidget(self.sum, 5)
        self.equation = text_label(rich=True)
        self.lay_out(controls, (body, 1), self.hover, self.equation, self.shapes)

    # ---- lab API ---------------------------------------------------------------------
    def not_applicable(self) -> str:
        return "the 1×1 lab needs a Conv2d with a 1×1 kernel, groups 1 and no padding"

    def args(self) -> dict:
        return {"channel": self.channel.value(), "top": self.top.value()}

    def set_layer(self, name: str, row, module_type: str | None = None) -> None:
        shape = getattr(row, "out_shape", None)
        channels = shape[0] if shape else 1
        self.channel.blockSignals(True)
        self.channel.setRange(0, max(0, channels - 1))
        self.channel.setSuffix(f" of {channels}")
        self.channel.blockSignals(False)
        super().set_layer(name, row, module_type)

    # ---- drawing ---------------------------------------------------------------------
    def render(self, d) -> None:
        o = d.out_channel
        c_out, c_in = d.weight.shape
        bias = f" + b[{o}]" if d.bias is not None else " (no bias)"
        self.title.setText(f"{d.layer}: output channel {o} = Σ over {c_in} input channels of W[{o}, c] · input[c]"
                           + bias)
        self.matrix_cell.set_map(d.weight, symmetric(d.weight), DIVERGING)
        self.matrix_cell.set_title(f"W: {c_out} outputs × {c_in} inputs")
        self.matrix_cell.show_box(o, 0, o, c_in - 1)
        top_levels = symmetric(d.top_maps)
        levels = symmetric(d.rest_map, d.weighted_sum, d.model_output)
        for i, tile in enumerate(self.tiles):
            shown = i < len(d.top_channels)
            tile.set_visible(shown)
            if shown:
                tile.set_map(d.top_maps[i], top_levels, DIVERGING)
                tile.set_title(_term(d.top_weights[i], f" × in[{d.top_channels[i]}]", 3, first=not i))
        rest = c_in - len(d.top_channels)
        self.rest.set_map(d.rest_map, levels, DIVERGING)
        self.rest.set_title(f"+ rest ({rest} channels)")
        self.total.set_map(d.weighted_sum, levels, DIVERGING)
        self.total.set_title(f"{_term(d.bias_value, '', 3, first=False)} (bias) = sum" if d.bias is not None
                             else "= sum (no bias)")
        self.model.set_map(d.model_output, levels, DIVERGING)
        self.model.set_title(f"model's output, ch {o}")
        self.equation.setText(
            f"out[{o}] = {' '.join(_term(w, f'·in[{c}]', 3, first=not i) for i, (w, c) in enumerate(zip(d.top_weights, d.top_channels)))}"
            f" + (the other {rest}){' ' + _term(d.bias_value, '', 4, first=False) if d.bias is not None else ''}<br>"
            f"max |sum − model's output| = <b>{d.max_abs_error:.2g}</b> · blue negative, white 0, red positive: "
            f"contributions ±{fmt(top_levels[1])}, rest / sum / output ±{fmt(levels[1])}")
        self.shapes.setText(f"<b>{d.shape_text}</b>: at every pixel (stride {d.stride}) the {c_in} input values "
                            f"become {c_out} outputs through the same {c_out}×{c_in} matrix · {d.params_text}")

    def _matrix_hovered(self, found) -> None:
        d = self.data
        if found is None or d is None:
            self.hover.setText(" ")
            return
        _, r, c = found
        self.hover.setText(f"W[{r}, {c}] = {fmt(d.weight[r, c])}: how much input channel {c} feeds output {r}")

    def _sum_hovered(self, found) -> None:
        if self.hovered_cell(found) is None:
            return
        d = self.data
        name, r, c = found
        if name.startswith("top"):
            i = int(name[3:])
            value = f"{d.top_weights[i]:+.4f} × in[{d.top_channels[i]}] = {fmt(d.top_maps[i][r, c])}"
        else:
            value = {"rest": f"rest = {fmt(d.rest_map[r, c])}", "sum": f"sum = {fmt(d.weighted_sum[r, c])}",
                     "model": f"model output = {fmt(d.model_output[r, c])}"}[name]
        self.hover.setText(f"pixel ({r}, {c}): {value}")
        self.hover_unit((r, c))


def _term(value: float, what: str, digits: int, first: bool) -> str:
    """One term of a written sum: ``−0.123 × x`` first, then ``+ 0.829 × y`` / ``− 0.829 × y`` (one sign each)."""
    sign = "−" if value < 0 else "+"
    if first:
        return f"{'−' if value < 0 else ''}{abs(value):.{digits}f}{what}"
    return f"{sign} {abs(value):.{digits}f}{what}"
