"""Toy mode of the Convolution panel: a small grid, its padding ring, the filter window
sliding cell by cell and the output filling in, with the formula and the non-integer
case spelled out. All numbers come from :mod:`convviz.core.geometry`.
"""
from __future__ import annotations

import itertools

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)
from superqt import QLabeledSlider

from convviz.core.geometry import (CONV, POOL, AxisSpec, analyse_axis, same_padding, sliding_output, toy_input,
                                   toy_kernel)
from convviz.ui.widgets import grid_canvas as cv
from convviz.ui.widgets.grid_canvas import GridCanvas, Overlay
from convviz.ui.widgets.stage_view import grab_stage
from convviz.ui.widgets.stage_layout import Stage, caption_html, hex_color, label_height, legend_html, rich_labels
from convviz.ui.convolution.toy_layout import MAX_CELL, ToyLayout
from convviz.ui.convolution.text import formula_html, note_html, toy_input_html, toy_window_html

SLIDERS = (  # key, label, minimum, maximum, default
    ("W", "Input size W", 1, 64, 7), ("K", "Kernel K", 1, 11, 3), ("S", "Stride S", 1, 8, 1),
    ("P", "Padding P", 0, 25, 0), ("D", "Dilation D", 1, 5, 1))
NOTE_STYLE = {  # level → (border, background)
    "ok": (cv.GREEN, cv.tint(cv.GREEN, 0.10)), "info": (cv.BLUE, cv.tint(cv.SKY, 0.14)),
    "warn": (cv.ORANGE, cv.tint(cv.ORANGE, 0.14)), "error": (cv.VERMILLION, cv.tint(cv.VERMILLION, 0.12))}
LABEL_LIMIT = 18  # numbers are written in the cells of grids up to this many cells across
UNREAD = cv.tint(cv.VERMILLION, 0.38)
FILLED = cv.tint(cv.GREEN, 0.28)
CURRENT = cv.tint(cv.SKY, 0.75)
CONTROLS_WIDTH = 270


class ToyView(ToyLayout, QWidget):
    """Sliders for W, K, S, P, D (+ channels, filters, pooling ceil_mode) and the animated grids."""

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
        self.channels = QSpinBox()
        self.channels.setRange(1, 16)
        self.filters = QSpinBox()
        self.filters.setRange(1, 64)
        for spin, tip in ((self.channels, "Input channels C (depth of input and filter)"),
                          (self.filters, "Number of filters F (output channels)")):
            spin.setToolTip(tip)
            spin.valueChanged.connect(self._rebuild)
        form.addRow("Channels C", self.channels)
        form.addRow("Filters F", self.filters)
        column.addWidget(box)
        self.same_button = QPushButton("Same padding")
        self.same_button.setToolTip("Set P = D·(K−1)/2 so that the output has the size of the input")
        self.same_button.clicked.connect(self.apply_same_padding)
        self.same_label = QLabel()
        self.same_label.setWordWrap(True)
        self.ceil_check = QCheckBox("Pooling with ceil_mode=True")
        self.ceil_check.setToolTip("Treat the layer as MaxPool2d(ceil_mode=True): a partial last window is kept")
        self.ceil_check.toggled.connect(self._rebuild)
        column.addWidget(self.same_button)
        column.addWidget(self.same_label)
        column.addWidget(self.ceil_check)
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

    def set_values(self, **values: int) -> None:
        """Set several sliders (W, K, S, P, D) at once, then rebuild once."""
        for key, value in values.items():
            self.sliders[key].blockSignals(True)
            self.sliders[key].setValue(int(value))
            self.sliders[key].blockSignals(False)
        self._rebuild()

    def spec(self) -> AxisSpec:
        pool = self.ceil_check.isChecked()
        return AxisSpec(self.value("W"), self.value("K"), self.value("S"), self.value("P"), None, self.value("D"),
                        POOL if pool else CONV, ceil_mode=pool)

    def apply_same_padding(self) -> None:
        """Set P = D·(K−1)/2, or explain why no symmetric padding keeps the size."""
        same = same_padding(self.value("K"), self.value("S"), self.value("D"))
        if same.padding is None:
            self.same_label.setText(f"<span style='color:{hex_color(cv.VERMILLION)}'>No same padding:</span> "
                                    f"{same.reason}")
            return
        self.set_values(P=same.padding)
        w = self.value("W")
        self.same_label.setText(f"{same.reason} Output {w}×{w} = input."
                                if self.geometry.ok else f"{same.reason} ({self.geometry.error})")

    # ---- model → pictures --------------------------------------------------------
    def _rebuild(self) -> None:
        spec = self.spec()
        self.geometry = geom = analyse_axis(spec)
        channels, filters = self.channels.value(), self.filters.value()
        self.values = toy_input(channels, spec.size)
        self.weights = None if spec.kind == POOL else toy_kernel(channels, spec.kernel)
        self.output = sliding_output(self.values, self.weights, geom, geom)
        self._paint_input(geom, channels)
        self._paint_kernel(spec, channels)
        o = geom.output
        word = "MaxPool2d" if spec.kind == POOL else "Filter"
        detail = [f"stride {spec.stride}"]
        if spec.dilation > 1:
            detail.append(f"dilation {spec.dilation}, spans {spec.span}")
        if spec.kind == POOL:
            detail.insert(0, "takes the max")
        self.kernel_caption.setText(caption_html(
            f"<b>{word}</b> {spec.kernel}×{spec.kernel}" + (f"×{channels}" if channels > 1 and spec.kind == CONV
                                                             else ""), " · ".join(d.replace(" ", "&nbsp;")
                                                                                   for d in detail)))
        fraction = f"{geom.exact.numerator}/{geom.exact.denominator}"
        exact = ("one per window" if geom.is_whole else
                 f"⌈{fraction}⌉ = {o}, ceil_mode" if spec.ceil_mode else f"⌊{fraction}⌋ = {o}, floored")
        depth = f"×{filters}" if filters > 1 and spec.kind == CONV else ""
        self.output_caption.setText(caption_html(f"<b>Output</b> {o}×{o}{depth}", exact) if geom.ok else
                                    caption_html("<b>Output</b>: none", "PyTorch refuses"))
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
        self._paint_output(geom, filters)
        self._frame = min(self._frame, max(0, self.frame_count() - 1))
        self._hover = None
        self._update_frame()
        self.stage.relayout()
        self.stage.updateGeometry()
        self.frames_changed.emit(self.frame_count())

    def _paint_input(self, geom, channels: int) -> None:
        s = geom.spec
        n = geom.extent
        rgba = cv.solid(n, n, cv.WHITE, 0)
        rgba[:s.padded, :s.padded] = cv.solid(s.padded, s.padded, cv.PAD_GREY)
        inside = slice(s.pad_lo, s.pad_lo + s.size)
        rgba[inside, inside] = cv.solid(s.size, s.size, cv.WHITE)
        hatch = np.zeros((n, n), bool)
        if geom.ok and geom.uncovered:
            unread = np.zeros((s.size, s.size), bool)
            unread[list(geom.uncovered), :] = True
            unread[:, list(geom.uncovered)] = True
            rgba[inside, inside][unread] = (*UNREAD, 255)
            hatch[inside, inside] = unread
        labels = None
        if n <= LABEL_LIMIT:
            pad_text = "−∞" if s.kind == POOL else "0"
            labels = [["" for _ in range(n)] for _ in range(n)]
            for r, c in itertools.product(range(s.padded), repeat=2):
                ir, ic = r - s.pad_lo, c - s.pad_lo
                inside_cell = 0 <= ir < s.size and 0 <= ic < s.size
                labels[r][c] = f"{self.values[0, ir, ic]:g}" if inside_cell else pad_text
        self.input_canvas.set_grid(rgba, labels, inner=(s.pad_lo, s.pad_lo, s.pad_lo + s.size - 1,
                                                        s.pad_lo + s.size - 1), stack=min(channels - 1, 2),
                                   hatch=hatch)
        self.input_caption.setText(caption_html(
            f"<b>Input</b> {s.size}×{s.size}" + (f"×{channels}" if channels > 1 else ""),
            f"padding P&nbsp;=&nbsp;{s.pad_lo} → {s.padded}×{s.padded}" + (", pads with −∞" if s.kind == POOL
                                                                            and s.pad_lo else "")))

    def _paint_output(self, geom, filters: int) -> None:
        """All output values (revealed frame by frame) over empty white cells."""
        if not geom.ok:
            self.output_canvas.set_grid(cv.solid(1, 1, cv.WHITE, 0))
            return
        o = geom.output
        labels = None
        if o <= LABEL_LIMIT:
            labels = [[f"{self.output[r, c]:g}".replace("-", "−") for c in range(o)] for r in range(o)]
        self.output_canvas.set_grid(cv.solid(o, o, FILLED), labels, inner=(0, 0, o - 1, o - 1),
                                    stack=min(filters - 1, 2) if geom.spec.kind == CONV else 0,
                                    hidden=cv.solid(o, o, cv.WHITE))

    def _paint_kernel(self, spec: AxisSpec, channels: int) -> None:
        key = (spec.kernel, spec.dilation, spec.kind, channels)
        if key == getattr(self, "_kernel_key", None):
            return
        self._kernel_key = key
        n = spec.span
        rgba = cv.solid(n, n, (246, 246, 246))
        labels = [["" for _ in range(n)] for _ in range(n)]
        for i, j in itertools.product(range(spec.kernel), repeat=2):
            r, c = i * spec.dilation, j * spec.dilation
            if self.weights is None:
                rgba[r, c, :3] = cv.tint(cv.SKY, 0.35)
            else:
                w = self.weights[0, i, j]
                rgba[r, c, :3] = cv.tint(cv.BLUE, 0.35) if w < 0 else cv.tint(cv.YELLOW, 0.6) if w > 0 else cv.WHITE
                labels[r][c] = f"{w:g}".replace("-", "−")
        self.kernel_canvas.set_grid(rgba, labels if n <= LABEL_LIMIT else None, inner=(0, 0, n - 1, n - 1),
                                    stack=min(channels - 1, 2) if spec.kind == CONV else 0)

    def _legend(self, spec, geom) -> str:
        items = [(cv.WHITE, "input"), (cv.SKY, "window taps"), (cv.BLUE, "window"), (FILLED, "output computed"),
                 (CURRENT, "current output"), (cv.ORANGE, "hovered")]
        if spec.pad_lo:
            items.insert(1, (cv.PAD_GREY, "padding (−∞)" if spec.kind == POOL else "padding (zeros)"))
        if geom.ok and geom.uncovered:
            items.insert(1, (UNREAD, "never read (hatched)"))
        if not geom.ok:
            items = [(cv.WHITE, "input"), (cv.PAD_GREY, "padding"), (cv.VERMILLION, "window that does not fit")]
        if geom.ok and geom.partial:
            items.append((cv.PURPLE, "partial window / ceil-only output"))
        return legend_html(items)

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
        text = toy_window_html(geom, self.values, self.weights, row, col, self.output[row, col], False)
        if self._hover is not None:
            kind, r, c = self._hover
            if kind == "output":
                inp += self._window_overlays(geom, r, c, cv.ORANGE, 120, cv.ORANGE)
                out.append(Overlay(rect=(r, c, r, c), outline=cv.qcolor(cv.ORANGE), width=3))
                text = toy_window_html(geom, self.values, self.weights, r, c, self.output[r, c], True)
            else:
                readers = [(a, b) for a in geom.windows_reading(r) for b in geom.windows_reading(c)]
                p = geom.spec.pad_lo
                inp.append(Overlay(rect=(r + p, c + p, r + p, c + p), outline=cv.qcolor(cv.ORANGE), width=3))
                if readers:
                    out.append(Overlay(cells=np.array(readers), fill=cv.qcolor(cv.ORANGE, 110),
                                       outline=cv.qcolor(cv.ORANGE), width=2))
                text = toy_input_html(geom, r, c, self.values[0, r, c], readers)
        self.input_canvas.set_overlays(inp)
        self.output_canvas.set_overlays(out)
        self._readout(text)

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
