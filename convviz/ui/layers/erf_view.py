"""The Layers panel's "Effective field" tab: where a unit's input gradient really lies, against its box.

For the unit last clicked on the mosaic or the channel view (or set by row / column), the session runs
:func:`convviz.core.where.erf.erf_task`: ``|∂unit/∂input|`` on the photo as the model sees it, the
theoretical receptive field as an orange box, and the share of the box holding 90 % of the gradient.
**Layer average** adds the mean over a 4×4 grid of units. **Uniform 3×3 stack** plots Luo et al.'s
exact case: σ grows as √(2n/3) while the box grows as 2n + 1.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox, QGraphicsRectItem, QLabel, QPushButton, QSpinBox, QWidget,
)

from convviz.core.where.look_figures import colour, heat_overlay

from ..widgets.channel_view import image_view
from ..widgets.image_view import cosmetic_pen
from ..widgets.reflow import FitHeight
from ..widgets.sections import hrow, text_label, vstack

KEY = "layers.erf"
TASK = "where.erf:erf_task"
ORANGE = QColor(255, 140, 0)


class ErfView(QWidget):
    """Lab tab: one unit's effective field beside its theoretical box, a layer average, the stack demo."""

    changed = Signal()
    ready = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self.layer: str | None = None
        self.row = None
        self.channel = 0  #: the mosaic's channel (used when "only this channel" is on)
        self.unit: tuple[int, int] | None = None
        self.result = None
        self._asked = None
        self._pending = False

        self.title = QLabel("Effective receptive field")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        self.row_spin, self.col_spin = QSpinBox(), QSpinBox()
        for spin, what in ((self.row_spin, "row"), (self.col_spin, "column")):
            spin.setToolTip(f"The unit's {what} on the layer's map (or click a unit in the mosaic or the channel view)")
            spin.valueChanged.connect(self._on_spin)
        self.only_channel = QCheckBox("only channel 0")
        self.only_channel.setToolTip("Differentiate that channel's unit alone (off: the sum over every channel at "
                                     "that position)")
        self.only_channel.toggled.connect(lambda _on: self.request())
        self.average = QPushButton("Layer average")
        self.average.setToolTip("Also the mean over a 4×4 grid of this layer's units (one batched backward pass)")
        self.average.clicked.connect(lambda: self.request(average=True))
        self.demo_button = QPushButton("Uniform 3×3 stack…")
        self.demo_button.setCheckable(True)
        self.demo_button.setToolTip("Luo et al. (2016)'s exact case: n 3×3 convolutions with equal weights")
        self.demo_button.toggled.connect(self._toggle_demo)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setStyleSheet("color: #555;")
        self.sentence = QLabel("")
        self.sentence.setWordWrap(True)
        self.sentence.setTextFormat(Qt.TextFormat.PlainText)

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setMinimumHeight(220)
        self.photo_view, self.photo = image_view(self.canvas)
        self.heat_view = self.canvas.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat_view.addItem(self.heat)
        self.boxes = []
        for view in (self.photo_view, self.heat_view):
            box = QGraphicsRectItem()
            box.setPen(cosmetic_pen(ORANGE, 2))
            box.setZValue(5)
            box.setVisible(False)
            view.addItem(box)
            self.boxes.append(box)
        captions = hrow(*((text_label(text, colour="#666"), 1) for text in (
            "the photo as the model sees it, |∂unit/∂input| over it; orange: the theoretical field "
            "(cut at the photo's edge)",
            "|∂unit/∂input| alone (square-root scale)")), spacing=None)

        self.demo = pg.PlotWidget(background="w")
        self.demo.setMinimumHeight(200)
        self.demo.setLabel("bottom", "n (number of 3×3 convolutions)")
        self.demo.setLabel("left", "pixels")
        self.demo.addLegend(offset=(10, 5))
        self.demo.setVisible(False)
        self.demo_note = QLabel("")
        self.demo_note.setWordWrap(True)
        self.demo_note.setStyleSheet("color: #555;")
        self.demo_note.setVisible(False)

        controls = hrow("Unit row", self.row_spin, "column", self.col_spin, self.only_channel, None, self.average,
                        self.demo_button)
        vstack(self, self.title, controls, self.status, (self.canvas, 1), captions, self.sentence, self.demo,
               self.demo_note, margins=6, spacing=4)
        self.fit_height = FitHeight(self)

    # ------------------------------------------------------------------ lab API
    def bind(self, session) -> None:
        self.session = session
        session.task_progress.connect(lambda key, p: key == KEY and p.text and self.status.setText(p.text))
        session.task_ready.connect(self._on_ready)
        session.task_failed.connect(self._on_failed)
        session.task_cancelled.connect(lambda key: key == KEY and self._finish("Cancelled."))
        session.task_stale.connect(self._on_stale)

    def applies_to(self, row) -> bool:
        return row is not None and ((len(row.out_shape) == 3 and row.rf is not None) or len(row.out_shape) == 1)

    def set_layer(self, name: str, row) -> None:
        self.layer, self.row = name, row
        h, w = (row.out_shape[1], row.out_shape[2]) if row is not None and len(row.out_shape) == 3 else (1, 1)
        self.unit = None
        for spin, n in ((self.row_spin, h), (self.col_spin, w)):
            spin.blockSignals(True)
            spin.setRange(0, max(0, n - 1))
            spin.setValue(n // 2)
            spin.blockSignals(False)
        self.title.setText(f"Effective vs theoretical receptive field of a unit of {name}" if name else
                           "Effective receptive field")
        self.request()

    def set_channel(self, channel: int) -> None:
        self.channel = channel
        self.only_channel.setText(f"only channel {channel}")
        if self.only_channel.isChecked():
            self.request()

    def set_unit(self, layer: str, row: int, col: int) -> None:
        """A unit clicked on the mosaic or the channel view (or a patch opened): its field."""
        if layer != self.layer:
            return
        for spin, value in ((self.row_spin, row), (self.col_spin, col)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.request()

    def is_ready(self) -> bool:
        return self._asked is None and self.result is not None

    def mark_stale(self) -> None:
        """The image changed: :meth:`_on_stale` asks again when the session says the result is stale."""

    # ------------------------------------------------------------------ requests
    def request(self, average: bool = False) -> None:
        if self.session is None or not self.layer or not self.applies_to(self.row):
            return
        if not self.isVisible():
            self._pending = True
            return
        self._pending = False
        unit = (self.row_spin.value(), self.col_spin.value())
        channel = self.channel if self.only_channel.isChecked() else None
        self._asked = (self.layer, unit, channel, average)
        self.session.run_task(KEY, TASK, layer=self.layer, unit=unit, channel=channel, average=average)
        self.status.setText(f"Differentiating unit {unit} of {self.layer}" + (" and a 4×4 grid of its units…" if average
                                                                                  else "…"))

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if self._pending:
            self.request()

    def _on_spin(self, _value: int) -> None:
        self.request()

    def _finish(self, text: str) -> None:
        self._asked = None
        if text:
            self.status.setText(text)

    def _on_failed(self, key: str, message: str) -> None:
        if key == KEY:
            self._finish(message)

    def _on_stale(self, key: str) -> None:
        """A new photo or model: the same unit again, now if the tab is on screen, else when it is shown."""
        if key == KEY:
            self._finish("")
            average = self.result is not None and self.result.layer is not None
            self.request(average=average)

    def _on_ready(self, key: str, result) -> None:
        if key != KEY:
            return
        self._asked = None
        self.result = result
        one = result.unit
        if one.input_rgb is not None:
            self.photo.setImage(heat_overlay(one.input_rgb, one.heat), autoLevels=False, levels=(0, 255))
        self.heat.setImage(colour(np.sqrt(one.heat), 0.0, 1.0), autoLevels=False, levels=(0, 255))
        size = one.heat.shape[0]
        (top, bottom), (left, right) = one.box
        # a deep layer's box reaches past the input (into padding): drawn cut at the photo's edge
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, size - 1), min(right, size - 1)
        for box in self.boxes:
            box.setRect(QRectF(left, top, right - left + 1, bottom - top + 1))
            box.setVisible(True)
        for view in (self.photo_view, self.heat_view):
            view.setRange(QRectF(0, 0, size, size), padding=0.02)
        channel = "all channels" if one.channel is None else f"channel {one.channel}"
        self.status.setText(f"unit {one.unit} of {one.layer}, {channel}")
        text = one.sentence() + "."
        if result.layer is not None:
            avg = result.layer
            text += (f"\nLayer average over {len(avg.units)} units: 90 % of the gradient lies in "
                     f"{avg.mean_share * 100:.0f} % of the box's real pixels (σ ≈ {avg.mean_std[0]:.1f} × "
                     f"{avg.mean_std[1]:.1f} px against a {avg.rf[0]:g}×{avg.rf[1]:g} box).")
        self.sentence.setText(text)
        self.ready.emit()

    # ------------------------------------------------------------------ the demo
    def _toggle_demo(self, on: bool) -> None:
        self.demo.setVisible(on)
        self.demo_note.setVisible(on)
        if on and not self.demo.listDataItems():
            from convviz.core.where.erf import stack_demo

            demo = stack_demo()
            n = np.asarray(demo.depths, float)
            fine = np.linspace(1, n[-1], 200)
            self.demo.plot(fine, 2 * fine + 1, pen=pg.mkPen(ORANGE, width=2), name="theoretical box, 2n + 1")
            self.demo.plot(fine, np.sqrt(2 * fine / 3), pen=pg.mkPen((59, 81, 139), width=2), name="√(2n/3)")
            self.demo.plot(n, demo.std, pen=None, symbol="o", symbolSize=7, symbolBrush=(33, 144, 141),
                           name="measured σ of |∂centre/∂input|")
            worst = max(abs(s / p - 1) for s, p in zip(demo.std, demo.predicted))
            self.demo_note.setText(
                f"n 3×3 convolutions, every weight 1/9, no non-linearity: the centre unit's input gradient is the "
                f"n-fold convolution of a 3×3 box, so its spread σ is exactly √(2n/3) (measured here: within "
                f"{worst * 100:.1g} %), while the box grows as 2n + 1. At n = {demo.depths[-1]} the box is "
                f"{demo.box[-1]} px wide and σ is {demo.std[-1]:.1f} px: the field a unit really uses shrinks "
                f"against its box as 1/√n.")
