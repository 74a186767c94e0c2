"""ReLU lab: a real pre-activation and what ReLU / ReLU6 / SiLU / Hardswish made of it.

Input and output of one channel side by side on the same blue–white–red scale (white is
exactly 0, so every zeroed value turns white), ``f(x)`` drawn between them over the
input's range, both histograms of the whole layer, and the measured share of zeros.
"""
from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget

from convviz.core.labs.names import ACTIVATION_TYPES
from convviz.core.labs.text import share_text

from ..widgets.sections import text_label, vstack
from .base import LAB_MARGIN, LAB_SPACING, LabWidget
from .maps import BACKGROUND, DIVERGING, MapGrid, fmt, robust_symmetric, symmetric

INPUT_COLOUR = (70, 110, 200)
OUTPUT_COLOUR = (220, 90, 30)
CURVE_HALF = 10.0  #: f(x) is drawn over −10…10 (or the layer's range when narrower): where the shapes differ


def _plot(title: str) -> pg.PlotItem:
    plot = pg.PlotItem(title=title)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.showGrid(x=True, y=True, alpha=0.25)
    return plot


class ReluLab(LabWidget):
    """Lab ``relu``: pre-activation → f(x) → activation, histograms and the zero share."""

    NAME = "relu"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("Select an activation (ReLU, ReLU6, SiLU, Hardswish) or a BatchNorm+activation layer.")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.source = text_label(colour="#555")
        self.channel = QSpinBox()
        self.channel.setPrefix("channel ")
        self.channel.setToolTip("Which channel's maps to show (the histograms and shares are of the whole layer)")
        self.channel.valueChanged.connect(lambda _v: self.request())
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.channel, 0, Qt.AlignmentFlag.AlignTop)

        self.grid = MapGrid()
        self.grid.setMinimumHeight(220)
        self.inp = self.grid.add_map("input", "input (pre-activation)", 0, 0)
        self.curve_plot = _plot("f(x)")
        self.curve_plot.setLabel("bottom", "x")
        self.grid.ci.addItem(self.curve_plot, row=0, col=1, rowspan=2)
        self.curve = self.curve_plot.plot(pen=pg.mkPen((30, 30, 30), width=2))
        self.identity = self.curve_plot.plot(pen=pg.mkPen((160, 160, 160), width=1, style=Qt.PenStyle.DashLine))
        self.out = self.grid.add_map("output", "output", 0, 2)
        for col, stretch in ((0, 5), (1, 4), (2, 5)):
            self.grid.ci.layout.setColumnStretchFactor(col, stretch)
        self.grid.hovered.connect(self._hovered)

        self.hist = pg.GraphicsLayoutWidget()
        self.hist.setBackground(BACKGROUND)
        self.hist.setFixedHeight(170)
        self.hist_plot = _plot("values of the whole layer (count, log scale; empty bins not drawn)")
        self.hist_plot.setLogMode(False, True)
        self.hist_plot.setLabel("bottom", "value")
        self.hist_plot.addLegend(offset=(-10, 5))
        self.hist.addItem(self.hist_plot)
        fill_in = pg.mkBrush(*INPUT_COLOUR, 70)
        fill_out = pg.mkBrush(*OUTPUT_COLOUR, 70)
        self.hist_in = self.hist_plot.plot(stepMode="center", pen=pg.mkPen(INPUT_COLOUR, width=1.5), name="input",
                                           fillLevel=0, brush=fill_in)
        self.hist_out = self.hist_plot.plot(stepMode="center", pen=pg.mkPen(OUTPUT_COLOUR, width=1.5),
                                            name="output", fillLevel=0, brush=fill_out)

        self.summary = text_label(rich=True)
        self.differences = text_label(colour="#444")

        vstack(self, top, self.source, self.message, (self.grid, 1), self.hover, self.hist, self.summary,
               self.differences, margins=LAB_MARGIN, spacing=LAB_SPACING)

    # ---- lab API ---------------------------------------------------------------------
    def not_applicable(self) -> str:
        return f"the ReLU lab shows activations ({', '.join(ACTIVATION_TYPES)}) and BatchNorm+activation layers"

    def args(self) -> dict:
        return {"channel": self.channel.value()}

    def set_layer(self, name: str, row, module_type: str | None = None) -> None:
        channels = row.out_shape[0] if row is not None and len(row.out_shape) == 3 else 1
        self.channel.blockSignals(True)
        self.channel.setRange(0, max(0, channels - 1))
        self.channel.setSuffix(f" of {channels}")
        self.channel.blockSignals(False)
        super().set_layer(name, row, module_type)

    def set_status(self, text: str) -> None:
        self.source.setText(text if text else (self.data.source if self.data is not None else ""))

    # ---- drawing ---------------------------------------------------------------------
    def render(self, d) -> None:
        self.title.setText(f"{d.layer} · {d.formula}")
        in_levels, out_levels = robust_symmetric(d.input_map), symmetric(d.output_map)
        self.inp.set_map(d.input_map, in_levels, DIVERGING)
        self.out.set_map(d.output_map, out_levels, DIVERGING)
        self.inp.set_title(f"input x, channel {d.channel} (±{fmt(in_levels[1])})")
        self.out.set_title(f"{d.function}(x): {share_text(d.channel_zero_share)} exactly 0 (±{fmt(out_levels[1])})")
        self.curve.setData(d.curve_x, d.curve_y)
        self.identity.setData(d.curve_x, d.curve_x)
        lo, hi = max(float(d.curve_x[0]), -CURVE_HALF), min(float(d.curve_x[-1]), CURVE_HALF)
        inside = (d.curve_x >= lo) & (d.curve_x <= hi)
        y = d.curve_y[inside] if inside.any() else d.curve_y
        self.curve_plot.setXRange(lo, hi, padding=0.05)
        self.curve_plot.setYRange(min(float(y.min()), -1.0), max(float(y.max()), 1.0), padding=0.08)
        self.curve_plot.setLabel("bottom", f"x (the layer's x: {fmt(d.curve_x[0])} … {fmt(d.curve_x[-1])})")
        self.curve_plot.setTitle(d.function + "(x)")
        # the true counts on a log axis: an empty bin (log 0) is left out, a count of 1 sits on the baseline
        self.hist_in.setData(d.bin_edges, d.input_counts.astype(float))
        self.hist_out.setData(d.bin_edges, d.output_counts.astype(float))
        c, h, w = d.shape
        extra = f"; {share_text(d.capped_share)} capped at 6" if d.function == "ReLU6" else ""
        self.summary.setText(
            f"<b>{d.function} set {share_text(d.zero_share)} of the layer's {c * h * w:,} values to 0</b> "
            f"(input: {share_text(d.negative_share)} negative){extra}. Channel {d.channel}: "
            f"{share_text(d.channel_zero_share)} zero. {html.escape(d.behaviour[:1].upper() + d.behaviour[1:])}. "
            f"<span style='color:#777'>Blue negative, white 0, red positive; "
            f"max |f(input) − captured output| = {d.max_abs_error:.2g}.</span>")
        self.differences.setText(d.differences)

    def _hovered(self, found) -> None:
        if self.hovered_cell(found) is None:
            return
        _, r, c = found
        d = self.data
        x, y = float(d.input_map[r, c]), float(d.output_map[r, c])
        self.hover.setText(f"unit ({r}, {c}): x = {fmt(x)} → {d.function}(x) = {fmt(y)}")
        self.hover_unit((r, c))
