"""Toy mode of the Convolution panel: a small grid, its padding ring, the filter window
sliding cell by cell and the output filling in, with the formula and the non-integer
case spelled out. All numbers come from :mod:`convviz.core.geometry.arithmetic`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)
from superqt import QLabeledSlider

from convviz.core.geometry.arithmetic import (CONV, LAYER_NAMES, AxisSpec, analyse_axis, pool_same_padding, same_padding,
                                   sliding_output, tf_same_spec, toy_bias, toy_input, toy_kernel_bank, toy_spec)
from convviz.ui.widgets import grid_canvas as cv
from convviz.ui.widgets.grid_canvas import GridCanvas, Overlay
from convviz.ui.widgets.stage_view import grab_stage
from convviz.ui.widgets.stage_layout import Stage, caption_html, hex_color, label_height, rich_labels
from convviz.ui.convolution.toy_layout import MAX_CELL, ToyLayout
from convviz.ui.convolution.toy_paint import CURRENT, ToyPaint
from convviz.ui.convolution.arithmetic import num, toy_input_html, toy_window_html
from convviz.ui.convolution.text import formula_html, note_html, output_caption, tf_same_html

SLIDERS = (  # key, label, minimum, maximum, default
    ("W", "Input size W", 1, 64, 7), ("K", "Kernel K", 1, 11, 3), ("S", "Stride S", 1, 8, 1),
    ("P", "Padding P", 0, 25, 0), ("D", "Dilation D", 1, 5, 1))
NOTE_STYLE = {  # level → (border, background)
    "ok": (cv.GREEN, cv.tint(cv.GREEN, 0.10)), "info": (cv.BLUE, cv.tint(cv.SKY, 0.14)),
    "warn": (cv.ORANGE, cv.tint(cv.ORANGE, 0.14)), "error": (cv.VERMILLION, cv.tint(cv.VERMILLION, 0.12))}
CONTROLS_WIDTH = 270
MODES = (("conv", "Convolution", "Conv2d: a filter of weights, summed over all input channels, plus a bias"),
         ("max", "Max pooling", "MaxPool2d: the largest value of each window, channel by channel"),
         ("avg", "Average pooling", "AvgPool2d: the mean of each window, channel by channel"),
         ("l2", "L2 pooling", "LPPool2d with p = 2: √(sum of squares) of each window, channel by channel"))
SAME_TIPS = {True: "Set P = D·(K−1)/2 so the output keeps the input's size, or say why no symmetric P does",
             False: "Pooling has no padding='same': find the smallest P torch allows (P ≤ K/2; LPPool2d none) that "
                    "keeps the input's size, or say that none does"}
POOL_OPERATION = {"max": "takes the max", "avg": "takes the mean", "l2": "takes √Σx²"}


class ToyView(ToyPaint, ToyLayout, QWidget):
    """Layer type, sliders for W, K, S, P, D, channels and filters (and which one is shown),
    ceil_mode for pooling, and the animated grids."""

    frames_changed = Signal(int)
    cell_hovered = Signal(object)  # ("input" | "output", row, col) or None
    unit_hovered = Signal(object)  # stage-view protocol: a toy grid has no model unit, so never emitted

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.sliders: dict[str, QLabeledSlider] = {}
        self._frame = 0
        self._hover = None
        self._build_controls()
        self._build_stage()
        layout = QHBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addWidget(self.stage, 1)
        self._rebuild()

    # ---- construction ------------------------------------------------------------
    def _build_controls(self) -> None:
        self.controls = QWidget()
        self.controls.setFixedWidth(CONTROLS_WIDTH)
        column = QVBoxLayout(self.controls)
        column.setContentsMargins(0, 0, 8, 0)
        box = QGroupBox("Layer settings")
        form = QFormLayout(box)
        for key, label, lo, hi, default in SLIDERS:
            slider = QLabeledSlider(Qt.Horizontal)
            slider.setRange(lo, hi)
            slider.setValue(default)
            slider.setToolTip(f"{label}: {lo}–{hi} (type a value in the box)")
            slider.valueChanged.connect(self._rebuild)
            self.sliders[key] = slider
            form.addRow(label, slider)
        self.mode_combo = QComboBox()
        for i, (key, text, tip) in enumerate(MODES):
            self.mode_combo.addItem(text, key)
            self.mode_combo.setItemData(i, tip, Qt.ToolTipRole)
        self.mode_combo.setToolTip("What slides over the input: a filter (convolution) or a pooling window")
        self.mode_combo.currentIndexChanged.connect(self._rebuild)
        form.insertRow(0, "Layer", self.mode_combo)
        self.channels, self.filters = QSpinBox(), QSpinBox()
        self.channels.setRange(1, 16)
        self.filters.setRange(1, 64)
        self.channel_spin, self.filter_spin = QSpinBox(), QSpinBox()
        for spin, tip in ((self.channels, "Input channels C (depth of input and filter)"),
                          (self.filters, "Number of filters F (output channels of a convolution)"),
                          (self.channel_spin, "Input channel drawn in the grids and written out in the arithmetic"),
                          (self.filter_spin, "Filter whose weights and output map are drawn")):
            spin.setToolTip(tip)
            spin.valueChanged.connect(self._rebuild)
        form.addRow("Channels C", self.channels)
        form.addRow("Filters F", self.filters)
        form.addRow("Show channel", self.channel_spin)
        form.addRow("Show filter", self.filter_spin)
        self.pad_rule = QComboBox()
        self.pad_rule.addItem("P on each side", "sym")
        self.pad_rule.addItem("TF / ONNX SAME", "tf")
        self.pad_rule.setToolTip("P on each side: PyTorch's padding (symmetric). TF / ONNX SAME: the padding "
                                 "TensorFlow's 'SAME' computes from W, K, S and D, the extra cell after (Conv2d only)")
        self.pad_rule.currentIndexChanged.connect(self._rebuild)
        form.insertRow(5, "Padding rule", self.pad_rule)
        self.ceil_check = QCheckBox("ceil_mode=True")
        self.ceil_check.setToolTip("Pooling only: round the output size up; a partial last window is kept "
                                   "if it starts inside the input or the left padding")
        self.ceil_check.toggled.connect(self._rebuild)
        form.addRow("Rounding", self.ceil_check)
        column.addWidget(box)
        self.same_button = QPushButton("Same padding")
        self.same_button.clicked.connect(self.apply_same_padding)
        self.same_label = QLabel()
        self.same_label.setWordWrap(True)
        column.addWidget(self.same_button)
        column.addWidget(self.same_label)
        hint = QLabel("Hover an output cell to see its window and dot product; hover an input cell to see "
                      "which outputs read it.<br><br>Space: play/pause · ←/→: step · Home/End")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #555;")
        column.addSpacing(8)
        column.addWidget(hint)
        column.addStretch(1)

    def _build_stage(self) -> None:
        self.stage = Stage(self._arrange, QSize(420, 400))
        self.stage.setObjectName("convolutionToyStage")
        self.input_canvas = GridCanvas(self.stage, max_cell=MAX_CELL, min_size=1)
        self.kernel_canvas = GridCanvas(self.stage, max_cell=MAX_CELL, min_size=1)
        self.output_canvas = GridCanvas(self.stage, max_cell=MAX_CELL, min_size=1)
        self.input_caption, self.kernel_caption, self.output_caption = rich_labels(
            self.stage, 3, Qt.AlignHCenter | Qt.AlignBottom)
        self.formula_label, self.note_label, self.readout_label, self.legend_label = rich_labels(
            self.stage, 4, Qt.AlignLeft | Qt.AlignTop)
        self.formula_label.setStyleSheet("font-size: 14px; padding: 2px 4px;")
        self.readout_label.setStyleSheet("font-size: 13px; padding: 2px 4px;")
        self.legend_label.setStyleSheet("font-size: 12px; padding: 0px 4px;")
        self._readout_fits = 0  # length of the longest readout text known to fit its label
        self.input_canvas.cell_hovered.connect(self._on_input_hover)
        self.output_canvas.cell_hovered.connect(self._on_output_hover)

    def _readout(self, text: str) -> None:
        """Show the readout; the stage is only re-placed when a longer text no longer fits."""
        self.readout_label.setText(text)
        if len(text) > self._readout_fits:
            label = self.readout_label
            if label_height(label, label.width(), 2) > label.height():
                self.stage.relayout()
            self._readout_fits = len(text)

    # ---- settings ----------------------------------------------------------------
    def value(self, key: str) -> int:
        return int(self.sliders[key].value())

    def set_values(self, **values) -> None:
        """Set several settings at once, then rebuild once: sliders ``W K S P D``, ``C`` (channels),
        ``F`` (filters), ``mode`` (conv / max / avg / l2), ``ceil`` (bool), ``pad`` (``sym`` or ``tf``:
        TF / ONNX SAME), ``channel`` and ``filter`` (which one is shown)."""
        spins = {"C": self.channels, "F": self.filters, "channel": self.channel_spin, "filter": self.filter_spin}
        widgets = [*self.sliders.values(), *spins.values(), self.mode_combo, self.ceil_check, self.pad_rule]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            for key in ("C", "F"):  # the ranges of the shown channel / filter follow these
                if key in values:
                    spins[key].setValue(int(values[key]))
            self.channel_spin.setMaximum(self.channels.value() - 1)
            self.filter_spin.setMaximum(self.filters.value() - 1)
            for key, value in values.items():
                if key in self.sliders:
                    self.sliders[key].setValue(int(value))
                elif key in ("channel", "filter"):
                    spins[key].setValue(int(value))
                elif key == "mode":
                    index = self.mode_combo.findData(value)
                    if index < 0:
                        raise ValueError(f"unknown layer mode {value!r} (conv, max, avg or l2)")
                    self.mode_combo.setCurrentIndex(index)
                elif key == "ceil":
                    self.ceil_check.setChecked(bool(value))
                elif key == "pad":
                    index = self.pad_rule.findData(value)
                    if index < 0:
                        raise ValueError(f"unknown padding rule {value!r} (sym or tf)")
                    self.pad_rule.setCurrentIndex(index)
                elif key not in spins:
                    raise ValueError(f"unknown toy setting {key!r}")
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._rebuild()

    @property
    def mode(self) -> str:
        """``conv``, ``max``, ``avg`` or ``l2``."""
        return self.mode_combo.currentData()

    @property
    def tf_same(self) -> bool:
        """True when the toy pads TF / ONNX SAME (Conv2d only)."""
        return self.mode == CONV and self.pad_rule.currentData() == "tf"

    def spec(self) -> AxisSpec:
        if self.tf_same:
            return tf_same_spec(self.value("W"), self.value("K"), self.value("S"), self.value("D"))
        return toy_spec(self.mode, self.value("W"), self.value("K"), self.value("S"), self.value("P"),
                        self.value("D"), self.ceil_check.isChecked())

    def apply_same_padding(self) -> None:
        """Set P = D·(K−1)/2 (Conv2d) or the smallest padding pooling allows that keeps the size, or explain
        why none does."""
        if self.mode != CONV:
            same = pool_same_padding(self.value("K"), self.value("S"), self.value("D"), self.value("W"), self.mode,
                                     self.ceil_check.isChecked())
        else:
            self.set_values(pad="sym")
            same = same_padding(self.value("K"), self.value("S"), self.value("D"), size=self.value("W"))
        if same.padding is None:
            tf = " The padding rule 'TF / ONNX SAME' pads unevenly to keep ⌈W/S⌉." if self.mode == CONV else ""
            self.same_label.setText(f"<span style='color:{hex_color(cv.VERMILLION)}'>No same padding:</span> "
                                    f"{same.reason}{tf}")
            self._same_for = self._settings()
            return
        self.set_values(P=same.padding)
        w = self.value("W")
        self.same_label.setText(f"{same.reason} Output {w}×{w} = input."
                                if self.geometry.ok else f"{same.reason} ({self.geometry.error})")
        self._same_for = self._settings()

    def _settings(self) -> tuple:
        return tuple(self.value(k) for k in "WKSPD") + (self.mode, self.pad_rule.currentData(), self.ceil_check.isChecked())

    # ---- model → pictures --------------------------------------------------------
    def _rebuild(self) -> None:
        if getattr(self, "_same_for", None) is not None and self._settings() != self._same_for:
            self.same_label.setText("")  # the note described other settings
            self._same_for = None
        spec = self.spec()
        self.geometry = geom = analyse_axis(spec)
        conv = spec.kind == CONV
        channels, filters = self.channels.value(), self.filters.value()
        for spin, count, enabled in ((self.channel_spin, channels, channels > 1),
                                     (self.filter_spin, filters, conv and filters > 1)):
            spin.blockSignals(True)
            spin.setMaximum(count - 1)
            spin.setEnabled(enabled)
            spin.blockSignals(False)
        self.filters.setEnabled(conv)
        self.ceil_check.setEnabled(not conv)
        self.pad_rule.setEnabled(conv)
        self.same_button.setToolTip(SAME_TIPS[conv])
        self.sliders["P"].setEnabled(not self.tf_same)
        if self.tf_same:
            self.same_label.setText(tf_same_html(spec))
            self._same_for = self._settings()
        self.shown_channel, self.shown_filter = self.channel_spin.value(), self.filter_spin.value() if conv else 0
        self.values = toy_input(channels, spec.size)
        self.weights = toy_kernel_bank(filters, channels, spec.kernel) if conv else None
        self.bias = toy_bias(filters) if conv else None
        self.output = sliding_output(self.values, self.weights, geom, geom, self.bias)  # (F or C, O, O)
        self.shown_output = self.output[self.shown_filter if conv else self.shown_channel] if geom.ok else None
        self._paint_input(geom, channels)
        self._paint_kernel(spec, channels)
        detail = [f"stride {spec.stride}"]
        if spec.dilation > 1:
            detail.append(f"dilation {spec.dilation}, spans {spec.span}")
        if conv:
            bias = f"bias {num(self.bias[self.shown_filter])}"
            title = (f"<b>Filter{f' {self.shown_filter}' if filters > 1 else ''}</b> {spec.kernel}×{spec.kernel}"
                     + (f"×{channels}" if channels > 1 else ""))
            detail.insert(0, f"channel {self.shown_channel} slice · {bias}" if channels > 1 else bias)
        else:
            title = f"<b>{LAYER_NAMES[spec.mode]}</b> {spec.kernel}×{spec.kernel}"
            detail.insert(0, POOL_OPERATION[spec.mode])
        self.kernel_caption.setText(caption_html(title, " · ".join(d.replace(" ", "&nbsp;") for d in detail)))
        depth = filters if conv else channels
        title, exact = output_caption(geom, depth)
        if geom.ok and depth > 1:
            exact += f" · {'filter' if conv else 'channel'} {self.shown_filter if conv else self.shown_channel}"
        self.output_caption.setText(caption_html(title, exact))
        self.formula_label.setText(formula_html(geom, channels, filters))
        level, html = note_html(geom)
        if level != getattr(self, "note_level", None):  # restyling is slow: only when the level changes
            border, back = NOTE_STYLE[level]
            self.note_label.setStyleSheet(f"QLabel {{ border: 1px solid {hex_color(border)}; border-left: 6px "
                                          f"solid {hex_color(border)}; background: {hex_color(back)}; "
                                          f"padding: 8px; font-size: 13px; }}")
        self.note_label.setText(html)
        self.note_level = level
        self.legend_label.setText(self._legend(spec, geom))
        self._paint_output(geom, depth)
        self._frame = min(self._frame, max(0, self.frame_count() - 1))
        self._hover = None
        self._update_frame()
        self.stage.relayout()
        self.stage.updateGeometry()
        self.frames_changed.emit(self.frame_count())

    # ---- frames ------------------------------------------------------------------
    def grab_frame(self):
        """The stage as shown (stage-view protocol)."""
        return grab_stage(self.stage)

    def frame_count(self) -> int:
        return self.geometry.output ** 2 if self.geometry.ok else 0

    @property
    def frame(self) -> int:
        return self._frame

    def set_frame(self, index: int) -> None:
        """Show frame ``index``: window on output cell ``index``, outputs up to it filled."""
        self._frame = min(max(0, int(index)), max(0, self.frame_count() - 1))
        self._update_frame()

    @staticmethod
    def _window_overlays(geom, row: int, col: int, fill, fill_alpha: int, outline) -> list[Overlay]:
        """Taps of window (row, col) filled, its span outlined, taps past the padded input dashed."""
        s = geom.spec
        tr, tc = geom.taps(row), geom.taps(col)
        taps = np.array([(r, c) for r in tr for c in tc])
        outside = (taps >= s.padded).any(axis=1)
        overlays = [Overlay(cells=taps[~outside], fill=cv.qcolor(fill, fill_alpha)),
                    Overlay(rect=(int(tr[0]), int(tc[0]), int(tr[-1]), int(tc[-1])), outline=cv.qcolor(outline),
                            width=3)]
        if outside.any():
            overlays.append(Overlay(cells=taps[outside], outline=cv.qcolor(cv.PURPLE), width=2, dashed=True))
        return overlays

    def _update_frame(self) -> None:
        geom = self.geometry
        if not geom.ok:
            s = geom.spec
            span = min(s.span, geom.extent) - 1
            self.input_canvas.set_overlays([Overlay(rect=(0, 0, span, span), outline=cv.qcolor(cv.VERMILLION),
                                                    width=3, dashed=True)])
            self.output_canvas.set_overlays([])
            self._readout("")
            return
        self.output_canvas.set_reveal(self._frame + 1)
        self._apply_overlays()

    def _apply_overlays(self) -> None:
        geom = self.geometry
        o = geom.output
        row, col = divmod(self._frame, o)
        inp = self._window_overlays(geom, row, col, cv.SKY, 150, cv.BLUE)
        out = [Overlay(cells=np.array([(row, col)]), fill=cv.qcolor(CURRENT)),
               Overlay(rect=(row, col, row, col), outline=cv.qcolor(cv.BLUE), width=3)]
        if geom.spec.ceil_mode and geom.output > geom.floor_output:
            extra = np.array([(r, c) for r in range(o) for c in range(o) if max(r, c) >= geom.floor_output])
            out.append(Overlay(cells=extra, outline=cv.qcolor(cv.PURPLE), width=1.5, dashed=True))
        text = self._window_text(row, col, False)
        if self._hover is not None:
            kind, r, c = self._hover
            if kind == "output":
                inp += self._window_overlays(geom, r, c, cv.ORANGE, 120, cv.ORANGE)
                out.append(Overlay(rect=(r, c, r, c), outline=cv.qcolor(cv.ORANGE), width=3))
                text = self._window_text(r, c, True)
            else:
                readers = [(a, b) for a in geom.windows_reading(r) for b in geom.windows_reading(c)]
                p = geom.spec.pad_lo
                inp.append(Overlay(rect=(r + p, c + p, r + p, c + p), outline=cv.qcolor(cv.ORANGE), width=3))
                if readers:
                    out.append(Overlay(cells=np.array(readers), fill=cv.qcolor(cv.ORANGE, 110),
                                       outline=cv.qcolor(cv.ORANGE), width=2))
                text = toy_input_html(geom, r, c, self.values[self.shown_channel, r, c], readers)
        self.input_canvas.set_overlays(inp)
        self.output_canvas.set_overlays(out)
        self._readout(text)

    def _window_text(self, row: int, col: int, hovered: bool) -> str:
        return toy_window_html(self.geometry, self.values, self.weights, self.bias, row, col,
                               self.shown_output[row, col], hovered, self.shown_channel, self.shown_filter)

    # ---- hover -------------------------------------------------------------------
    def _on_output_hover(self, cell) -> None:
        self._set_hover(("output", *cell) if cell is not None and self.geometry.ok else None)

    def _on_input_hover(self, cell) -> None:
        s = self.geometry.spec
        if cell is not None:
            r, c = cell[0] - s.pad_lo, cell[1] - s.pad_lo
            cell = ("input", r, c) if 0 <= r < s.size and 0 <= c < s.size and self.geometry.ok else None
        self._set_hover(cell)

    def _set_hover(self, hover) -> None:
        if hover == self._hover:
            return
        self._hover = hover
        if self.geometry.ok:
            self._apply_overlays()
        self.cell_hovered.emit(hover)

    def hover_output(self, row: int, col: int) -> None:
        """Act as if the pointer were over output cell (row, col)."""
        self._on_output_hover((row, col))

    def hover_input(self, row: int, col: int) -> None:
        """Act as if the pointer were over input cell (row, col) (unpadded coordinates)."""
        p = self.geometry.spec.pad_lo
        self._on_input_hover((row + p, col + p))
