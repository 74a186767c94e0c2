"""Real mode of the Convolution panel: a model's Conv2d filter sliding over that layer's
actual input, the actual output map building up, and the dot product behind any output
value (recomputed in numpy by :func:`convviz.core.geometry.conv_probe.probe`, torch-free).
"""
from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout,
                               QWidget)

from convviz.core.geometry.conv_probe import ConvLayerData, probe
from convviz.ui.widgets import grid_canvas as cv
from convviz.ui.widgets.grid_canvas import GridCanvas, Overlay
from convviz.ui.widgets.stage_view import grab_stage
from convviz.ui.widgets.stage_layout import Stage, caption_html, label_height, legend_html, rich_labels
from convviz.ui.convolution.arithmetic import probe_html
from convviz.ui.convolution.real_layout import MAP_MAX_CELL, RealLayout
from convviz.ui.convolution.real_text import groups_summary, layer_hint, layer_summary, robust_limit, value_range

LABEL_LIMIT = 12
BLACK, WHITE_Q = cv.qcolor((0, 0, 0)), cv.qcolor(cv.WHITE)
CONTROLS_WIDTH = 236
LOCATOR_PX = 11  # boxes on the maps are drawn at least this big, so a 3×3 window on a 224×224 map shows


class RealView(RealLayout, QWidget):
    """Layer / channel pickers and the real input, filter and output maps."""

    frames_changed = Signal(int)
    layer_requested = Signal(str)
    output_hovered = Signal(object)  # (row, col) or None
    unit_hovered = Signal(object)  # (layer, row, col) of the hovered output unit, or None (stage-view protocol)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data: ConvLayerData | None = None
        self._frame = 0
        self._hover = None
        self._build_controls()
        self._build_stage()
        layout = QHBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addWidget(self.stage, 1)
        self._show_empty("Load a model, then pick one of its Conv2d layers.")

    def _build_controls(self) -> None:
        self.controls = QWidget()
        self.controls.setFixedWidth(CONTROLS_WIDTH)
        column = QVBoxLayout(self.controls)
        column.setContentsMargins(0, 0, 8, 0)
        box = QGroupBox("Layer of the loaded model")
        form = QFormLayout(box)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Conv2d layers, by module path")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setMinimumContentsLength(12)
        self.layer_combo.activated.connect(lambda _: self.request_current())
        self.out_spin, self.in_spin = QSpinBox(), QSpinBox()
        self.out_spin.setToolTip("Output channel: which filter slides")
        self.in_spin.setToolTip("Input channel shown under the window (within the group feeding the output)")
        self.out_spin.valueChanged.connect(self._on_out_channel)
        self.in_spin.valueChanged.connect(self._show_channels)
        form.addRow(QLabel("Layer (Conv2d module)"))
        form.addRow(self.layer_combo)
        form.addRow("Output channel", self.out_spin)
        form.addRow("Input channel", self.in_spin)
        column.addWidget(box)
        self.groups_label, self.info_label = QLabel(), QLabel()
        for label in (self.groups_label, self.info_label):
            label.setWordWrap(True)
            label.setTextFormat(Qt.RichText)
            column.addWidget(label)
        column.addStretch(1)

    def _build_stage(self) -> None:
        self.stage = Stage(self._arrange, QSize(440, 420))
        self.stage.setObjectName("convolutionRealStage")
        self.input_canvas = GridCanvas(self.stage, max_cell=MAP_MAX_CELL, min_size=1)
        self.output_canvas = GridCanvas(self.stage, max_cell=MAP_MAX_CELL, min_size=1)
        self.window_canvas = GridCanvas(self.stage, max_cell=48, min_size=1)
        self.kernel_canvas = GridCanvas(self.stage, max_cell=48, min_size=1)
        self.input_caption, self.output_caption, self.window_caption, self.kernel_caption = rich_labels(
            self.stage, 4, Qt.AlignHCenter | Qt.AlignBottom)
        self.times_label = QLabel("×", self.stage)
        self.times_label.setAlignment(Qt.AlignCenter)
        self.times_label.setStyleSheet("color: #555555; font-size: 22px;")
        self.legend_label, self.readout_label = rich_labels(self.stage, 2, Qt.AlignLeft | Qt.AlignTop)
        self.readout_label.setStyleSheet("font-size: 13px; padding: 0px 2px;")
        self.readout_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.legend_label.setStyleSheet("font-size: 12px;")
        self.legend_label.setText(legend_html([(cv.BLUE, "negative"), (cv.WHITE, "zero"),
                                               (cv.VERMILLION, "positive"), (cv.PAD_GREY, "padding"),
                                               ((0, 0, 0), "current window"), (cv.YELLOW, "hovered")]))
        self._fits = {}  # label → length of the longest text known to fit it
        self.input_canvas.cell_hovered.connect(self._on_input_hover)
        self.output_canvas.cell_hovered.connect(self._on_output_hover)

    def _check_fit(self, label: QLabel, lines: int) -> None:
        """Re-place the stage when ``label``'s new, longer text no longer fits its box."""
        length = len(label.text())
        if length > self._fits.get(label, 0):
            if label_height(label, label.width(), lines) > label.height():
                self.stage.relayout()
            self._fits[label] = length

    # ---- layers and data ---------------------------------------------------------
    def set_layers(self, names: list[str], rows=None) -> None:
        """Fill the layer list; with the model's LayerRows each entry also shows its kernel,
        type (depthwise, pointwise, grouped), stride and output channels."""
        current = self.layer_combo.currentData()
        hints = {row.name: layer_hint(row) for row in rows or ()}
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for name in names:
            hint = hints.get(name, "")
            self.layer_combo.addItem(f"{name}  ·  {hint}" if hint else name, name)
            if hint:
                self.layer_combo.setItemData(self.layer_combo.count() - 1, f"{name}: {hint}", Qt.ToolTipRole)
        if current in names:
            self.layer_combo.setCurrentIndex(self.layer_combo.findData(current))
        self.layer_combo.blockSignals(False)
        self.set_data(None)

    def current_layer(self) -> str:
        """Module path of the layer selected in the list ('' when none)."""
        return self.layer_combo.currentData() or ""

    def request_current(self) -> None:
        """Ask for the data of the layer selected in the combobox."""
        name = self.current_layer()
        if name:
            self._show_empty(f"Computing <b>{name}</b> …")
            self.layer_requested.emit(name)

    def set_data(self, data: ConvLayerData | None) -> None:
        """Show a whole layer (None: clear)."""
        self.data = data
        self._hover = None
        if data is None:
            self._show_empty("Pick a Conv2d layer to see its real filter slide over its real input.")
            self.frames_changed.emit(0)
            return
        if self.layer_combo.findData(data.name) < 0:
            self.layer_combo.addItem(data.name, data.name)
        self.layer_combo.blockSignals(True)
        self.layer_combo.setCurrentIndex(self.layer_combo.findData(data.name))
        self.layer_combo.blockSignals(False)
        self.rows_geom, self.cols_geom = data.axes()
        self.times_label.show()
        self.legend_label.show()
        self.info_label.setText(layer_summary(data))
        self.out_spin.blockSignals(True)
        self.out_spin.setRange(0, data.out_channels - 1)
        self.out_spin.setValue(min(self.out_spin.value(), data.out_channels - 1))
        self.out_spin.blockSignals(False)
        self._frame = 0
        self._on_out_channel()
        self.frames_changed.emit(self.frame_count())

    def mark_stale(self) -> None:
        """The image or model changed: the shown layer is being recomputed."""
        if self.data is not None:
            self.readout_label.setText(f"Updating <b>{self.data.name}</b> for the new image or model …")

    def show_failure(self, message: str) -> None:
        """The layer could not be computed: clear what described the previous data."""
        self.data = None
        self._hover = None
        self._show_empty(f"<span style='color:#b00'>{html.escape(message)}</span>")
        self.frames_changed.emit(0)

    def grab_frame(self):
        """The stage as shown (stage-view protocol)."""
        return grab_stage(self.stage)

    def _show_empty(self, text: str) -> None:
        for canvas in (self.input_canvas, self.window_canvas, self.kernel_canvas, self.output_canvas):
            canvas.set_grid(cv.solid(1, 1, cv.WHITE, 0))
            canvas.set_overlays([])
        for caption in (self.input_caption, self.window_caption, self.kernel_caption, self.output_caption):
            caption.setText("")
        self.info_label.setText("")
        self.groups_label.setText("")
        self.readout_label.setText(text)
        self.times_label.hide()
        self.legend_label.hide()
        self.stage.relayout()

    def _on_out_channel(self) -> None:
        data = self.data
        if data is None:
            return
        feed = data.input_channels_for(self.out_spin.value())
        self.in_spin.blockSignals(True)
        self.in_spin.setRange(feed.start, feed.stop - 1)
        self.in_spin.setEnabled(len(feed) > 1)
        self.in_spin.blockSignals(False)
        self.groups_label.setText(groups_summary(data, self.out_spin.value()))
        self._show_channels()

    def _show_channels(self) -> None:
        """Colour the chosen input channel (with its padding), filter and output channel."""
        data = self.data
        if data is None:
            return
        o, c = self.out_spin.value(), self.in_spin.value()
        top, bottom, left, right = data.padding
        _, h, w = data.input.shape
        padded = data.padded_channel(c)
        self._limit = robust_limit(data.input[c])
        rgba = cv.diverging_rgba(padded, self._limit)
        ring = np.ones(padded.shape, bool)
        ring[top:top + h, left:left + w] = False
        if data.padding_mode == "zeros":
            rgba[ring, :3] = cv.PAD_GREY
        else:
            rgba[ring, :3] = (0.5 * rgba[ring, :3] + 0.5 * np.array(cv.PAD_GREY)).astype(np.uint8)
        self.input_canvas.set_grid(rgba, self._labels(padded), inner=(top, left, top + h - 1, left + w - 1))
        k = data.weight[o, c - data.input_channels_for(o).start]
        self.kernel_canvas.set_grid(cv.diverging_rgba(k), self._labels(k), inner=(0, 0, k.shape[0] - 1,
                                                                                 k.shape[1] - 1))
        full = cv.diverging_rgba(data.output[o], robust_limit(data.output[o]))
        self.output_canvas.set_grid(full, self._labels(data.output[o]))  # the whole map; the window moves over it
        size = (f"{h}×{w} + padding → {padded.shape[0]}×{padded.shape[1]}" if padded.shape != (h, w)
                else f"{h}×{w}, no padding")
        self.input_caption.setText(caption_html(f"<b>Layer input</b> · channel {c} of {data.in_channels}",
                                                f"{size} · {value_range(data.input[c])}"))
        dil = data.dilation
        self.kernel_caption.setText(caption_html(
            f"<b>Weights</b> [{o}, {c - data.input_channels_for(o).start}]",
            f"{k.shape[0]}×{k.shape[1]}" + (f", dilation&nbsp;{dil[0]}×{dil[1]}" if max(dil) > 1 else "") +
            (f" · bias&nbsp;{data.bias[o]:.4f}".replace("-", "−") if data.bias is not None else " · no&nbsp;bias")))
        self.output_caption.setText(caption_html(
            f"<b>Layer output</b> · channel {o} of {data.out_channels}",
            f"{data.output.shape[1]}×{data.output.shape[2]} · {value_range(data.output[o])} · hover a cell"))
        self._update_frame()
        self.stage.relayout()
        self.stage.updateGeometry()

    @staticmethod
    def _labels(values: np.ndarray):
        """Numbers for small grids: 2 decimals, 3 when the values are all small."""
        if max(values.shape) > LABEL_LIMIT:
            return None
        fmt = "{:.3f}" if np.abs(values).max(initial=0) < 0.1 else "{:.2f}"
        return [[fmt.format(v).replace("-", "−") for v in row] for row in values]

    # ---- frames ------------------------------------------------------------------
    def frame_count(self) -> int:
        return 0 if self.data is None else int(self.data.output.shape[1] * self.data.output.shape[2])

    @property
    def frame(self) -> int:
        return self._frame

    def set_frame(self, index: int) -> None:
        self._frame = min(max(0, int(index)), max(0, self.frame_count() - 1))
        self._update_frame()

    def _update_frame(self) -> None:
        data = self.data
        if data is None:
            return
        self._apply_overlays()

    def _window(self, row: int, col: int, colour) -> list[Overlay]:
        """Dilated taps and span of the window of output (row, col), in padded coordinates."""
        rows, cols = self.data.tap_indices(row, col)
        rows, cols = rows + self.data.padding[0], cols + self.data.padding[2]
        taps = np.array([(r, c) for r in rows for c in cols])
        rect = (int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))
        return [Overlay(rect=rect, outline=BLACK, width=4, min_px=LOCATOR_PX),
                Overlay(rect=rect, outline=cv.qcolor(colour), width=2, min_px=LOCATOR_PX),
                Overlay(cells=taps, fill=cv.qcolor(colour), outline=BLACK, width=1, dots=True)]

    def _apply_overlays(self) -> None:
        data = self.data
        ow = data.output.shape[2]
        row, col = divmod(self._frame, ow)
        inp = self._window(row, col, cv.WHITE)
        out = [Overlay(rect=(row, col, row, col), outline=BLACK, width=3, min_px=LOCATOR_PX)]
        shown = (row, col)
        if self._hover is not None:
            kind, r, c = self._hover
            if kind == "output":
                inp += self._window(r, c, cv.YELLOW)
                out += [Overlay(rect=(r, c, r, c), outline=BLACK, width=4, min_px=LOCATOR_PX),
                        Overlay(rect=(r, c, r, c), outline=cv.qcolor(cv.YELLOW), width=2, min_px=LOCATOR_PX)]
                shown = (r, c)
            else:
                readers = np.array([(a, b) for a in self.rows_geom.windows_reading(r)
                                    for b in self.cols_geom.windows_reading(c)]).reshape(-1, 2)
                p = (r + data.padding[0], c + data.padding[2])
                inp.append(Overlay(rect=(*p, *p), outline=cv.qcolor(cv.YELLOW), width=3, min_px=LOCATOR_PX))
                out.append(Overlay(cells=readers, outline=cv.qcolor(cv.YELLOW), width=2))
        self.input_canvas.set_overlays(inp)
        self.output_canvas.set_overlays(out)
        result = probe(data, self.out_spin.value(), *shown)
        self._show_window(result)
        prefix = "" if shown != (row, col) else "<span style='color:#555'>Current window.</span> "
        self.last_probe = result
        self.readout_label.setText(prefix + probe_html(data.name, result, self.in_spin.value()))
        self._check_fit(self.window_caption, 2)
        self._check_fit(self.readout_label, 3)

    def _show_window(self, result) -> None:
        """The input values under the window (selected channel), padding taps in grey."""
        i = list(result.in_channels).index(self.in_spin.value())
        values = result.windows[i]
        rgba = cv.diverging_rgba(values, self._limit)
        rgba[~result.inside, :3] = cv.PAD_GREY if self.data.padding_mode == "zeros" else rgba[~result.inside, :3]
        self.window_canvas.set_grid(rgba, self._labels(values), inner=(0, 0, values.shape[0] - 1,
                                                                       values.shape[1] - 1))
        self.window_caption.setText(caption_html("<b>Input window</b>", f"at output ({result.row}, {result.col})"))

    # ---- hover -------------------------------------------------------------------
    def _on_output_hover(self, cell) -> None:
        hover = ("output", *cell) if cell is not None and self.data is not None else None
        self._set_hover(hover)
        self.output_hovered.emit(None if hover is None else (cell[0], cell[1]))
        data = self.data
        self.unit_hovered.emit(None if hover is None or data is None else (data.name, cell[0], cell[1]))

    def _on_input_hover(self, cell) -> None:
        if cell is not None and self.data is not None:
            r, c = cell[0] - self.data.padding[0], cell[1] - self.data.padding[2]
            _, h, w = self.data.input.shape
            cell = ("input", r, c) if 0 <= r < h and 0 <= c < w else None
        self._set_hover(cell)

    def _set_hover(self, hover) -> None:
        if hover != self._hover:
            self._hover = hover
            if self.data is not None:
                self._apply_overlays()

    def hover_output(self, row: int, col: int) -> None:
        """Act as if the pointer were over output cell (row, col)."""
        self._on_output_hover((row, col))

    def clear_hover(self) -> None:
        self._on_output_hover(None)

