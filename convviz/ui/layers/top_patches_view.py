"""The Layers panel's "Top patches" tab: the photos of a folder that most activate the chosen channel.

Choose a folder once; the session runs :func:`convviz.core.where.top_patches.top_patches_task` on it
(progress, Cancel). One pass serves every channel of the layer and is cached per model, folder and
layer, so picking another channel in the mosaic only cuts new patches. Each patch is the strongest
unit's receptive field (its real pixels) in that photo; click one to open the photo at that unit.
"""
from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog, QGridLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSizePolicy, QToolButton,
    QWidget,
)

from ..settings import app_settings
from ..widgets.reflow import FitHeight
from ..widgets.sections import hrow, vstack

KEY = "layers.top_patches"
TASK = "where.top_patches:top_patches_task"
SETTING = "look/top_patches_folder"
CELL = 92  #: side of a patch on screen in the 3 × 3 grid
MIN_ROW_CELL, MAX_ROW_CELL = 76, 120  #: all 9 in one row when each can be at least this big (at most that)
K = 9


def patch_pixmap(rgb: np.ndarray, side: int = CELL) -> QPixmap:
    """``rgb`` (h, w, 3) uint8 scaled to fit ``side`` × ``side``."""
    rgb = np.ascontiguousarray(rgb[..., :3])
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)


class TopPatchesView(QWidget):
    """Lab tab: folder chooser, progress, Cancel, and the chosen channel's top 9 patches."""

    open_requested = Signal(str, str, int, object)  #: path, layer, channel, (row, col) at the layer
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self.layer: str | None = None
        self.row = None
        self.channel = 0
        self.result = None  #: the last TopPatchesResult shown
        self._asked: tuple | None = None  #: (folder, layer, channel) of the run in flight
        self._pending = False  #: a run waits for the tab to be shown
        self._result_folder = ""
        self.folder = app_settings().value(SETTING, "", str) or ""

        self.title = QLabel("Top patches")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        self.path = QLineEdit(self.folder)
        self.path.setPlaceholderText("a folder of photos (sub-folders too), e.g. a fine-tune data set")
        self.path.setToolTip("Every photo under this folder is run through the model once per layer (cached)")
        self.path.returnPressed.connect(lambda: self.set_folder(self.path.text().strip()))
        self.choose = QPushButton("Folder…")
        self.choose.setToolTip("Choose the folder of photos to search")
        self.choose.clicked.connect(self.ask_folder)
        self.find = QPushButton("Find")
        self.find.setToolTip("Run the folder through the model up to this layer and show the chosen channel's top 9")
        self.find.clicked.connect(lambda: self.set_folder(self.path.text().strip()))
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self._cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setStyleSheet("color: #555;")
        self.buttons: list[QToolButton] = []
        for _ in range(K):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(CELL, CELL))
            button.setFixedWidth(CELL + 14)
            button.setAutoRaise(True)
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda _=False, b=button: self._open(b))
            button.setVisible(False)
            self.buttons.append(button)
        self.grid = QGridLayout()
        self.grid.setSpacing(4)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._cols, self._cell = 0, CELL
        self._place(3)

        row = hrow("Folder", (self.path, 1), self.choose, self.find, self.cancel)
        vstack(self, self.title, row, self.progress, self.status, self.grid, None, margins=6, spacing=4)
        self.fit_height = FitHeight(self)
        self._update_title()

    # ------------------------------------------------------------------ lab API
    def bind(self, session) -> None:
        self.session = session
        session.task_progress.connect(self._on_progress)
        session.task_ready.connect(self._on_ready)
        session.task_failed.connect(self._on_failed)
        session.task_cancelled.connect(self._on_cancelled)
        session.task_stale.connect(self._on_stale)

    def applies_to(self, row) -> bool:
        return row is not None and len(row.out_shape) in (1, 3)

    def set_layer(self, name: str, row) -> None:
        self.layer, self.row = name, row
        if self.result is not None and self.result.top.layer != name:
            self._show(None)
        self._update_title()
        self.request()

    def set_channel(self, channel: int) -> None:
        """The mosaic's chosen channel: its patches (the layer's pass is cached, so this is quick)."""
        if channel == self.channel:
            return
        self.channel = channel
        self._update_title()
        if self._asked is not None and self._asked[:2] == (self.folder, self.layer):
            return  # the pass in flight serves every channel: the patches follow when it ends
        self.request()

    def is_ready(self) -> bool:
        return self._asked is None

    def mark_stale(self) -> None:
        """The image changed: nothing here depends on it."""

    # ------------------------------------------------------------------ requests
    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos", self.folder or os.path.expanduser("~"))
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str) -> None:
        self.folder = folder
        self.path.setText(folder)
        if folder:
            app_settings().setValue(SETTING, folder)
        self._pending = True
        self.request(force=True)

    def request(self, force: bool = False) -> None:
        """Run the task for the current folder, layer and channel, when the tab is on screen."""
        if self.session is None or not self.layer or not self.applies_to(self.row):
            return
        if not self.folder:
            self.status.setText("Choose a folder of photos: the 9 that most activate this channel will show here.")
            return
        if not (self.isVisible() or force):
            self._pending = True
            return
        wanted = (self.folder, self.layer, self.channel)
        if self._asked == wanted or (not force and self.result is not None and self._shown_for() == wanted):
            return
        self._pending = False
        self._asked = wanted
        self.session.run_task(KEY, TASK, folder=self.folder, layer=self.layer, channel=self.channel)
        self.cancel.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText(f"Searching {os.path.basename(os.path.normpath(self.folder))}…")

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if self._pending:
            self.request()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._place(9 if self._row_cell() >= MIN_ROW_CELL else 3)

    def _row_cell(self) -> int:
        """The patch side that puts all 9 in one row at this width."""
        return min(MAX_ROW_CELL, (self.width() - 24) // 9 - 18)

    def _place(self, cols: int) -> None:
        cell = self._row_cell() if cols == 9 else CELL
        if (cols, cell) == (self._cols, self._cell):
            return
        self._cols, self._cell = cols, cell
        for i, button in enumerate(self.buttons):
            button.setIconSize(QSize(cell, cell))
            button.setFixedWidth(cell + 14)
            self.grid.addWidget(button, i // cols, i % cols)
        if self.result is not None:
            self._show(self.result)

    def _cancel(self) -> None:
        if self.session is not None:
            self.session.cancel_task(KEY)

    def _shown_for(self) -> tuple | None:
        r = self.result
        return None if r is None else (self._result_folder, r.top.layer, r.channel)

    # ------------------------------------------------------------------ results
    def _on_progress(self, key: str, progress) -> None:
        if key != KEY:
            return
        if progress.fraction is not None:
            self.progress.setValue(int(1000 * progress.fraction))
        if progress.text:
            self.status.setText(f"Searching {os.path.basename(os.path.normpath(self.folder))}: {progress.text}")

    def _finish(self) -> None:
        self._asked = None
        self.cancel.setEnabled(False)
        self.progress.setVisible(False)

    def _on_ready(self, key: str, result) -> None:
        if key != KEY:
            return
        asked = self._asked
        self._finish()
        self._result_folder = asked[0] if asked else self.folder
        self._show(result)
        if result.top.layer == self.layer and result.channel != self.channel:
            self.request()  # the channel changed while the folder ran: cut its patches now

    def _on_failed(self, key: str, message: str) -> None:
        if key == KEY:
            self._finish()
            self._show(None)
            self.status.setText(message)

    def _on_cancelled(self, key: str) -> None:
        if key == KEY:
            self._finish()
            self.status.setText("Cancelled. Find searches the folder again.")

    def _on_stale(self, key: str) -> None:
        if key == KEY:  # the model changed: its patches no longer apply
            self._finish()
            self._show(None)
            self._pending = True
            self.request()

    def _show(self, result) -> None:
        self.result = result
        patches = result.patches if result is not None else ()
        for i, button in enumerate(self.buttons):
            patch = patches[i] if i < len(patches) else None
            button.setVisible(patch is not None)
            button.patch = patch
            if patch is None:
                continue
            button.setIcon(QIcon(patch_pixmap(patch.rgb, self._cell)))
            name = os.path.basename(patch.path)
            short = name if len(name) <= 14 else name[:12] + "…"
            button.setText(f"#{i + 1}  {patch.value:.3g}\n{short}")
            x0, y0, x1, y1 = patch.photo_box
            button.setToolTip(f"{patch.path}\nvalue {patch.value:.4g} at unit {patch.unit} of {result.top.layer}\n"
                              f"patch: pixels {x0}–{x1 - 1} × {y0}–{y1 - 1} of the photo\nclick: open this photo at that unit")
        if result is None:
            return
        top = result.top
        field = f"{result.rf[0]:g}×{result.rf[1]:g}-pixel receptive field" if result.rf else "whole input"
        cached = " (cached)" if top.cached else f" in {top.seconds:.1f} s"
        skipped = f"; {len(top.skipped)} file{'s' * (len(top.skipped) != 1)} skipped (not photos)" if top.skipped else ""
        self.status.setText(f"{len(top.paths)} photos searched{cached}{skipped}. Each patch is the real pixels of the "
                            f"strongest unit's {field} in that photo, with its value. Click one to open it at that unit.")

    def _open(self, button) -> None:
        patch = getattr(button, "patch", None)
        if patch is not None and self.result is not None:
            self.open_requested.emit(patch.path, self.result.top.layer, self.result.channel, tuple(patch.unit))

    def _update_title(self) -> None:
        where = f" of {self.layer}" if self.layer else ""
        self.title.setText(f"What channel {self.channel}{where} responds to: the 9 photos of a folder where it fires most"
                           "  (pick the channel in the mosaic above)")
