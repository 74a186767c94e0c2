"""The Compare tab: before and after fine-tuning, on the photo in view.

Name the other model (a checkpoint, the latest fine-tune, or the pretrained model a fine-tuned one
came from) and whether it comes before or after the current one. The session runs
:func:`convviz.core.where.compare.compare_task` on it: both models' maps of one layer from the same
input pixels and their difference, each model's Grad-CAM for its own top class, both top-5
predictions, and per layer how far the weights moved (‖ΔW‖/‖W‖; frozen layers exactly 0). It runs
again by itself for a new photo or model (when the tab is shown); another architecture is refused in
one sentence.
"""
from __future__ import annotations

import glob
import html
import os
import re

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QGridLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox,
    QWidget,
)

from convviz.core.finetune.tasks import default_save_dir
from convviz.core.where.look_figures import colour, evidence_picture
from convviz.ui.panel import Panel
from convviz.ui.widgets.sections import heading, hrow, text_label, vstack

from .weights_chart import WeightsChart

KEY = "compare"
TASK = "where.compare:compare_task"
TILE_MAX, TILE_MIN = 210, 120
AFTER, BEFORE = 0, 1
_FINE_TUNED = re.compile(r"\(fine-tuned (.+)\)$")


def pixmap(rgb: np.ndarray, side: int) -> QPixmap:
    rgb = np.ascontiguousarray(rgb[..., :3])
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    mode = Qt.TransformationMode.FastTransformation if max(h, w) * 2 <= side else Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)


def suggested_other(info) -> tuple[str, int]:
    """(spec, AFTER / BEFORE): for a fine-tuned model the architecture it was tuned from (before);
    otherwise the newest checkpoint the Fine-tune tab saved (after); ("", AFTER) when there is none."""
    found = _FINE_TUNED.search(info.title) if info is not None else None
    if found:
        return found.group(1), BEFORE
    saved = sorted(glob.glob(os.path.join(default_save_dir(), "*.pt")), key=os.path.getmtime)
    return (saved[-1], AFTER) if saved else ("", AFTER)


class Tile(QWidget):
    """One picture with a caption under it."""

    def __init__(self, caption: str = ""):
        super().__init__()
        self.rgb = None
        self.side = TILE_MAX
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background: #202226;")
        self.caption = text_label(caption, colour="#555")
        vstack(self, self.picture, self.caption, spacing=2)
        self.set_side(self.side)

    def set_side(self, side: int) -> None:
        self.side = side
        self.picture.setFixedSize(side, side)
        self.caption.setFixedWidth(side)
        self.set_rgb(self.rgb)

    def set_rgb(self, rgb, caption: str | None = None) -> None:
        self.rgb = rgb
        if caption is not None:
            self.caption.setText(caption)
        if rgb is None:
            self.picture.clear()
        else:
            self.picture.setPixmap(pixmap(rgb, self.side))


class ComparePanel(Panel):
    """Two models of one architecture on the current photo, and how far each layer's weights moved."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result = None
        self.running = False
        self._suggested = False
        self._pending = False  #: the photo or model changed while the tab was hidden: compare again when shown

        title, self.caption = heading("Before / after: the current model beside another of its architecture")
        self.caption.setText("Same photo, same input pixels: each model's maps of one layer and where its evidence "
                             "for its top class lies (Grad-CAM), both predictions, and per layer how far the weights "
                             "moved, ‖ΔW‖/‖W‖ (frozen layers stay at exactly 0).")
        self.other = QLineEdit()
        self.other.setPlaceholderText("a checkpoint (.pt), 'default', a torchvision name …")
        self.other.setToolTip("The other model: a fine-tuned checkpoint of the current one, or the model it was tuned "
                              "from")
        self.other.returnPressed.connect(self.run)
        self.other.textEdited.connect(lambda _text: setattr(self, "_suggested", False))  # the user's choice now
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        latest = QPushButton("Latest fine-tune")
        latest.setToolTip("The newest checkpoint the Fine-tune tab saved")
        latest.clicked.connect(self._latest)
        self.order = QComboBox()
        self.order.addItems(["after the current one", "before the current one"])
        self.order.setToolTip("After: e.g. the current model's fine-tune. Before: e.g. the model the current one was "
                              "tuned from. Weight changes are relative to the one before.")
        self.layer = QComboBox()
        self.layer.setMinimumContentsLength(12)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.setToolTip("The layer whose maps (and Grad-CAM) are compared")
        self.channel = QSpinBox()
        self.channel.setRange(-1, 0)
        self.channel.setSpecialValueText("mean")
        self.channel.setValue(-1)
        self.channel.setToolTip("One channel of the layer, or the mean over its channels")
        self.channel.valueChanged.connect(lambda _v: self._show_maps())
        self.go = QPushButton("Compare")
        self.go.clicked.connect(self.run)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(lambda: self.session is not None and self.session.cancel_task(KEY))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress.setVisible(False)
        self.status = text_label("", colour="#555")
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        self.tiles = [Tile("the photo as the model sees it"), Tile("before"), Tile("after"), Tile("|after − before|"),
                      Tile("before: evidence"), Tile("after: evidence")]
        self.preds = [text_label(""), text_label("")]
        for label in self.preds:
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.note = text_label("", colour="#555")
        self.summary = text_label("")
        self.summary.setStyleSheet("font-weight: 600;")
        self.chart = WeightsChart()

        row1 = hrow("Other model", (self.other, 1), browse, latest)
        row2 = hrow("It is", self.order, 8, "Layer", self.layer, "Channel", self.channel, None, self.go, self.cancel)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(10)
        self.grid.setVerticalSpacing(6)
        for i, tile in enumerate(self.tiles[:4]):
            self.grid.addWidget(tile, 0, i)
        self.grid.addWidget(self.note, 1, 0, Qt.AlignmentFlag.AlignTop)
        self.grid.addWidget(self.tiles[4], 1, 1)
        self.grid.addWidget(self.tiles[5], 1, 2)
        self.grid.addLayout(vstack(None, self.preds[0], self.preds[1], None), 1, 3)
        self.grid.setColumnStretch(4, 1)
        # the results appear once there is a comparison (empty tiles say nothing)
        self.results_box = QWidget()
        vstack(self.results_box, self.grid, self.summary, self.chart)
        self.results_box.setVisible(False)
        vstack(self, title, row1, row2, self.progress, self.status, self.results_box, None, margins=8, spacing=6)

    # ------------------------------------------------------------------ session
    def bind(self, session) -> None:
        super().bind(session)
        session.model_loaded.connect(self._on_model)
        session.task_progress.connect(self._on_progress)
        session.task_ready.connect(self._on_ready)
        session.task_failed.connect(self._on_failed)
        session.task_cancelled.connect(lambda key: key == KEY and self._finish("Cancelled."))
        session.task_stale.connect(self._on_stale)

    def is_ready(self) -> bool:
        return not self.running

    def _on_model(self, info) -> None:
        names = [r.name for r in info.rows if r.rf is not None and len(r.out_shape) == 3
                 and r.out_shape[1] * r.out_shape[2] > 1]
        keep = self.layer.currentText()
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItems(names)
        self.layer.setCurrentIndex(names.index(keep) if keep in names else len(names) - 1)
        self.layer.blockSignals(False)
        if not self.other.text().strip() or self._suggested:  # follow the model until the user names one
            spec, order = suggested_other(info)
            self.other.setText(spec)
            self.order.setCurrentIndex(order)
            self._suggested = True
        if not self.other.text().strip():
            self.status.setText("Name the other model (e.g. a checkpoint the Fine-tune tab saved), then Compare.")

    # ------------------------------------------------------------------ requests
    def _browse(self) -> None:
        start = os.path.dirname(self.other.text()) if os.path.isfile(self.other.text()) else os.path.expanduser("~")
        path, _ = QFileDialog.getOpenFileName(self, "The other model", start,
                                              "Models (*.pt *.pth *.safetensors *.ckpt *.bin);;All files (*)")
        if path:
            self.other.setText(path)
            self._suggested = False
            self.run()

    def _latest(self) -> None:
        saved = sorted(glob.glob(os.path.join(default_save_dir(), "*.pt")), key=os.path.getmtime)
        if not saved:
            self.status.setText(f"No fine-tune saved yet in {default_save_dir()}: train one in the Fine-tune tab.")
            return
        self.other.setText(saved[-1])
        self.order.setCurrentIndex(AFTER)
        self._suggested = False
        self.run()

    def run(self) -> None:
        spec = self.other.text().strip()
        if self.session is None:
            return
        if not spec:
            self.status.setText("Name the other model first (a checkpoint, or 'default').")
            return
        self.running = True
        self.go.setEnabled(False)
        self.cancel.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText(f"Loading {os.path.basename(spec) or spec} and comparing…")
        self._pending = False
        self.session.run_task(KEY, TASK, second_spec=spec, second_is_before=self.order.currentIndex() == BEFORE,
                              layer=self.layer.currentText() or None)

    def _finish(self, text: str) -> None:
        self.running = False
        self.go.setEnabled(True)
        self.cancel.setEnabled(False)
        self.progress.setVisible(False)
        if text:
            self.status.setText(text)

    def _on_progress(self, key: str, progress) -> None:
        if key != KEY:
            return
        self.running = True
        self.progress.setVisible(True)
        if progress.fraction is not None:
            self.progress.setValue(int(1000 * progress.fraction))
        if progress.text:
            self.status.setText(progress.text)

    def _on_failed(self, key: str, message: str) -> None:
        if key == KEY:
            self._finish(message)

    def _on_stale(self, key: str) -> None:
        """A new photo or model: compare again now if the tab is on screen, else when it is next shown
        (it loads the other model each time: no work for a hidden tab)."""
        if key != KEY:
            return
        self._finish("")
        self.results_box.setVisible(False)  # about the previous photo or model
        if self.isVisible():
            self.run()
        else:
            self._pending = True

    # ------------------------------------------------------------------ results
    def _on_ready(self, key: str, result) -> None:
        if key != KEY:
            return
        self._finish("")
        self.result = result
        self.results_box.setVisible(True)
        c = len(result.maps_a)
        self.channel.blockSignals(True)
        self.channel.setRange(-1, c - 1)
        self.channel.blockSignals(False)
        changed = np.argsort(-np.nan_to_num(result.channel_change, posinf=1e9))[:3]
        moved = ", ".join(f"{i} ({result.channel_change[i] * 100:.0f} %)" for i in changed if result.channel_change[i] > 0)
        self.status.setText(f"{result.layer}: {c} channels" + (f"; moved most: {moved}" if moved else "; no channel moved"))
        if self.session is not None and self.session.model_info is not None and self.session.image is not None:
            photo = self.session.model_info.preprocess.to_uint8(self.session.image.rgb)
            self.tiles[0].set_rgb(photo, "the photo as the current model sees it")
        self._show_maps()
        self._show_evidence()
        for label, title, preds in ((self.preds[0], result.title_a, result.predictions_a),
                                    (self.preds[1], result.title_b, result.predictions_b)):
            rows = "".join(f"<tr><td align='right'>{p['prob'] * 100:.1f}%&nbsp;</td><td>{_esc(p['label'])}</td></tr>"
                           for p in preds)
            label.setText(f"<b>{_esc(title)}</b><table>{rows}</table>")
        self.preds[0].setText("Before · " + self.preds[0].text())
        self.preds[1].setText("After · " + self.preds[1].text())
        self.note.setText(" ".join(n for n in (result.input_note, result.evidence_note) if n))
        self.summary.setText(result.summary())
        self.chart.set_changes(result.changes)
        self.ready.emit()

    def _show_maps(self) -> None:
        r = self.result
        if r is None:
            return
        ch = self.channel.value()
        a, b = (r.maps_a.mean(0), r.maps_b.mean(0)) if ch < 0 else (r.maps_a[ch], r.maps_b[ch])
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        diff = np.abs(b - a)
        what = "mean over channels" if ch < 0 else f"channel {ch}"
        self.tiles[1].set_rgb(colour(a, lo, hi), f"before: {_short(r.title_a)}, {what}")
        self.tiles[2].set_rgb(colour(b, lo, hi), f"after: {_short(r.title_b)}, same scale")
        self.tiles[3].set_rgb(colour(diff, 0.0, max(hi - lo, 1e-12)),
                              "|after − before|, same scale" if diff.max() > 0 else "|after − before| = 0 everywhere")

    def _show_evidence(self) -> None:
        r = self.result
        image = self.session.image if self.session is not None else None
        for tile, cam, which in ((self.tiles[4], r.cam_a, "before"), (self.tiles[5], r.cam_b, "after")):
            if cam is None or image is None:
                tile.set_rgb(None, f"{which}: no Grad-CAM at this layer")
                continue
            tile.set_rgb(evidence_picture(image.rgb, cam), f"{which}: evidence for “{cam.label}” ({cam.prob * 100:.0f}%)")

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._fit_tiles()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        self._fit_tiles()
        if self._pending:
            self.run()

    def _fit_tiles(self) -> None:
        """Four tiles a row in the room the tab has (its scroll area's viewport, not the panel's own width,
        which the tiles themselves hold up)."""
        host = self.parentWidget()
        room = host.width() if host is not None else self.width()
        side = max(TILE_MIN, min(TILE_MAX, (room - 16 - 3 * 10) // 4 - 4))
        if side != self.tiles[0].side:
            for tile in self.tiles:
                tile.set_side(side)
            self.note.setFixedWidth(side)


def _short(title: str, n: int = 28) -> str:
    return title if len(title) <= n else title[:n - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(str(text))
