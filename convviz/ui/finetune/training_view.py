"""Section 4 of the Fine-tune tab: training settings, Train / Cancel, progress with ETA, live loss and
accuracy curves (pyqtgraph) and the current augmented batch."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QSpinBox,
    QWidget,
)

from convviz.ui.finetune.thumbs import rgb_pixmap
from convviz.ui.widgets.sections import heading, vstack

TRAIN_PEN, VAL_PEN = pg.mkPen("#1f77b4", width=2), pg.mkPen("#d62728", width=2)
PROGRESS_HEIGHT = 10


class _Plot(pg.PlotWidget):
    """A plot that says when it has been painted."""

    painted = Signal()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        self.painted.emit()


#: curves with at most this many points mark each one (a run of a few epochs shows its first point too)
MARKED_POINTS = 12


def _plot(title: str, y_label: str) -> tuple[pg.PlotWidget, pg.PlotDataItem, pg.PlotDataItem]:
    """One plot with a train and a val curve (created once; later only ``setData``)."""
    plot = _Plot(background="w")
    plot.setTitle(title, color="#333", size="10pt")
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.setMenuEnabled(False)
    plot.setMinimumHeight(170)
    plot.setMinimumWidth(180)
    plot.setMaximumHeight(230)
    train = plot.plot([], [], pen=TRAIN_PEN, name="train")
    val = plot.plot([], [], pen=VAL_PEN, name="validation")
    return plot, train, val


class TrainingView(QWidget):
    """Settings, the Train/Cancel buttons and what a running job reports (``show_update``)."""

    #: a plot was painted (after ``show_update`` returned True, the update is on screen once it fires)
    drawn = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        box, caption = heading("4 · Train")
        caption.setText("A copy of the model trains in the background; the other tabs keep working. "
                        "Cancel stops within one batch and keeps the best model so far.")
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 1000)
        self.epochs.setSpecialValueText("auto")
        self.epochs.setToolTip("auto: 100 when only the head trains on cached features, 5 for the full loop")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.0, 1.0)
        self.lr.setSingleStep(0.0001)
        self.lr.setSpecialValueText("auto")
        self.lr.setToolTip("auto: 0.001 when only the head trains on cached features, 0.0003 for the full loop")
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(32)
        self.device = QComboBox()
        self.device.addItem("cpu")
        form = QGridLayout()
        form.setHorizontalSpacing(8)
        for i, (label, widget) in enumerate((("Epochs", self.epochs), ("Learning rate", self.lr),
                                             ("Batch size", self.batch), ("Device", self.device))):
            row, col = divmod(i, 2)
            name = QLabel(label)
            name.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.addWidget(name, row, 2 * col)
            form.addWidget(widget, row, 2 * col + 1)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        self.train = QPushButton("Train")
        self.train.setDefault(True)
        self.train.setMinimumWidth(90)
        self._has_data, self._running, self._following = False, False, False
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(PROGRESS_HEIGHT)  # a slim track: a full-height empty bar reads as a text field
        self.progress.setToolTip("Progress of the run")
        self.eta = QLabel("")
        self.eta.setFixedWidth(70)
        self.status = QLabel("Choose a folder first.")
        self.status.setStyleSheet("color: #555;")
        # fixed sizes: a new line of text repaints the label only, never re-lays out the curves
        self.status.setFixedHeight(self.status.sizeHint().height())
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.eta)
        self.loss_plot, self.train_loss, self.val_loss = _plot("Loss (cross-entropy)", "loss")
        self.acc_plot, self.train_acc, self.val_acc = _plot("Accuracy", "accuracy")
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.acc_plot.enableAutoRange(y=False)
        self.legend = QLabel("")
        self._unit = ""
        self.show_unit("epoch")
        # its text changes with the unit: a new size hint would re-lay out the whole panel (measured:
        # a ~110 ms stall when a run starts), so the label takes the width it is given
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.legend.setFixedHeight(self.legend.sizeHint().height())
        for plot in (self.loss_plot, self.acc_plot):
            plot.painted.connect(self.drawn)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        self.batch_caption = QLabel("")
        self.batch_caption.setStyleSheet("color: #666;")
        self.batch_view = QLabel("")
        self.batch_view.setFixedHeight(64)
        self.batch_view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # cropped, never widens
        self.batch_caption.setFixedHeight(self.batch_caption.sizeHint().height() or 18)
        vstack(self, box, form, buttons, self.status, self.legend, plots, self.batch_caption, self.batch_view)
        self._x_epochs = 0
        self._update_train()

    # ------------------------------------------------------------------ data
    def follow(self, data) -> None:
        """Enable Train only while ``data`` (the panel's DataSection) holds a usable folder."""
        if self._following:
            return
        self._following = True
        data.usable_changed.connect(self.set_has_data)
        self.set_has_data(data.usable)

    def set_has_data(self, has: bool) -> None:
        self._has_data = bool(has)
        self._update_train()

    def _update_train(self) -> None:
        self.train.setEnabled(self._has_data and not self._running)
        self.train.setToolTip("" if self._has_data else "Choose a folder of images first (section 1)")

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict:
        """epochs / lr (None: the core's default), batch_size, device."""
        return {"epochs": self.epochs.value() or None, "lr": self.lr.value() or None,
                "batch_size": self.batch.value(), "device": self.device.currentText()}

    def set_devices(self, devices: list[str]) -> None:
        if [self.device.itemText(i) for i in range(self.device.count())] != list(devices):
            current = self.device.currentText()
            self.device.clear()
            self.device.addItems(devices)
            if current in devices:
                self.device.setCurrentText(current)

    # ------------------------------------------------------------------ a run
    def set_running(self, running: bool) -> None:
        self._running = running
        self._update_train()
        self.cancel.setEnabled(running)
        for w in (self.epochs, self.lr, self.batch, self.device):
            w.setEnabled(not running)

    def has_curves(self) -> bool:
        """True while a run's curves are drawn."""
        return self.val_acc.xData is not None and len(self.val_acc.xData) > 0

    def reset(self) -> None:
        """Empty curves and progress for a new run."""
        for curve in (self.train_loss, self.val_loss, self.train_acc, self.val_acc):
            if curve.xData is not None and len(curve.xData):
                curve.setData([], [])
        self.progress.setValue(0)
        self.eta.setText("")
        self.batch_view.clear()
        self.batch_caption.setText("")

    def expect(self, unit: str, points: int) -> None:
        """Label and span the x axis for the next run (``points`` of ``unit``) before it starts:
        relabelling or re-ranging repaints both plots (15-30 ms each, measured), better done while
        the settings change than in the first moments of a run."""
        self.show_unit(unit)
        self._span(points)

    def _span(self, points: int) -> bool:
        if not points or points == self._x_epochs:
            return False
        self._x_epochs = points
        for plot in (self.loss_plot, self.acc_plot):
            plot.enableAutoRange(x=False)
            plot.setXRange(0.5, points + 0.5, padding=0)
        return True

    def show_done(self, outcome) -> None:
        """The run ended: a full bar and one line (a core ``TrainOutcome``)."""
        self.progress.setValue(1000)
        self.eta.setText("")
        done = "Cancelled" if outcome.cancelled else "Done"
        self.show_message(f"{done} in {outcome.facts.seconds:.1f} s: {outcome.accuracy:.1%} validation accuracy"
                          if outcome.facts.epochs_done else "Cancelled before the first epoch ended.")

    def show_update(self, update, text: str) -> bool:
        """A core ``TrainProgress`` without its model (curves, progress, batch strip); True when the
        plots changed (they repaint on the next turn of the event loop and then emit ``drawn``)."""
        self.progress.setValue(int(round(update.fraction * 1000)))
        self.eta.setText(eta_text(update.eta_s) if update.stage not in ("done", "cancelled") else "")
        self.status.setText(text + (f" · {update.message}" if update.message else "") + f" · {update.elapsed_s:.0f} s")
        h = update.history
        if h.get("val_acc"):
            self.show_unit(update.unit)
        changed = self._span(update.epochs)  # fixed x range: no re-ranging per epoch
        if h.get("val_acc") and len(h["val_acc"]) != len(self.val_acc.xData if self.val_acc.xData is not None else ()):
            x, changed = np.arange(1, len(h["val_acc"]) + 1), True
            dots = {"symbol": "o", "symbolSize": 5} if len(x) <= MARKED_POINTS else {"symbol": None}
            for curve, key in ((self.train_loss, "train_loss"), (self.val_loss, "val_loss"),
                               (self.train_acc, "train_acc"), (self.val_acc, "val_acc")):  # a lone point shows too
                pen = curve.opts["pen"]  # a QPen (TRAIN_PEN / VAL_PEN)
                curve.setData(x, h[key], symbolPen=pen, symbolBrush=pen.color(), **dots)
        points = len(h.get("val_acc") or ())
        if update.stage in ("done", "cancelled") and 0 < points < self._x_epochs:  # ended early (L-BFGS converged)
            changed = self._span(points) or changed
        if update.batch_grid is not None:
            self.batch_view.setPixmap(rgb_pixmap(update.batch_grid))
            self.batch_caption.setText(f"Epoch {update.epoch}: the first images of the current augmented batch")
        return changed

    def show_unit(self, unit: str) -> None:
        """Label the curves' x axis by what one point is (an epoch, or an L-BFGS iteration of the head)."""
        if unit == self._unit:
            return
        self._unit = unit
        self.legend.setText("<span style='color:#1f77b4'>━━ train</span> &nbsp; "
                            f"<span style='color:#d62728'>━━ validation</span> &nbsp; (one point per {unit})")
        for plot in (self.loss_plot, self.acc_plot):
            plot.setLabel("bottom", unit)

    def show_message(self, text: str) -> None:
        self.status.setText(text)


def eta_text(seconds: float | None) -> str:
    """``ETA 1:05`` / ``ETA 12 s`` / ``ETA …`` (not known yet)."""
    if seconds is None:
        return "ETA …"
    seconds = max(0, int(round(seconds)))
    return f"ETA {seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"ETA {seconds} s"
