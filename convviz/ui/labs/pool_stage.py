"""The pooling lab's stage: one map and its max / average / L2 pooling, window by window.

Implements the stage-view protocol (:mod:`convviz.ui.widgets.stage_view`): frame ``f`` is
output value ``f`` (row-major); the window it reads is outlined on the input and the value
it produced is outlined on each pooled map, with the three numbers under the maps.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .maps import MapGrid, VIRIDIS, fmt, span

MAX_LISTED = 9  #: list the window's values when it has at most this many taps
MAPS = (("max", "max pooling"), ("avg", "average pooling"), ("l2", "L2 pooling (LPPool2d, p = 2)"))


class PoolStage(QWidget):
    """Input map with the sliding window beside its three pooled maps."""

    frames_changed = Signal(int)
    unit_hovered = Signal(object)
    cell_hovered = Signal(object)  #: (map name, row, col) or None, for the lab's caption

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data = None
        self._frame = 0
        self.grid = MapGrid()
        self.grid.setMinimumSize(560, 200)
        self.cells = {"input": self.grid.add_map("input", "input map", 0, 0)}
        for col, (name, title) in enumerate(MAPS, start=1):
            self.cells[name] = self.grid.add_map(name, title, 0, col)
        self.grid.hovered.connect(self.cell_hovered)
        self.readout = QLabel(" ")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setWordWrap(True)
        self.readout.setStyleSheet("background: #fafafa; padding: 3px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.readout)

    # ---- stage-view protocol ---------------------------------------------------------
    def frame_count(self) -> int:
        return 0 if self.data is None else int(self.data.frames)

    @property
    def frame(self) -> int:
        return self._frame

    def set_frame(self, index: int) -> None:
        if self.data is None:
            return
        self._frame = int(min(max(index, 0), self.data.frames - 1))
        self._draw_window()

    def grab_frame(self) -> QImage:
        return self.grab().toImage()

    # ---- data ------------------------------------------------------------------------
    def set_data(self, d) -> None:
        """Show new pool-lab data; keeps the frame (clipped) so changing a setting keeps the place."""
        old = self.frame_count()
        self.data = d
        levels = span(d.input_map)
        self.cells["input"].set_map(d.input_map, levels, VIRIDIS)
        self.cells["input"].set_title(f"{d.source}, ch {d.channel}: {d.shape[1]}×{d.shape[2]}")
        oh, ow = d.out_shape[1], d.out_shape[2]
        # max and average on the input's own scale (so "coarser" and "dimmer" show); L2 on its own
        self.cells["max"].set_map(d.max_map, levels, VIRIDIS)
        self.cells["avg"].set_map(d.avg_map, levels, VIRIDIS)
        self.cells["max"].set_title(f"max → {oh}×{ow}")
        self.cells["avg"].set_title(f"average → {oh}×{ow}")
        l2 = self.cells["l2"]
        if d.l2_map is None:
            l2.set_map(np.zeros((oh, ow), np.float32), (0.0, 1.0), np.full((2, 3), 235, np.uint8))
            l2.set_title(f"no L2 at padding {d.padding}")  # d.l2_missing: LPPool2d cannot pad
        else:
            l2.set_map(d.l2_map, span(d.l2_map), VIRIDIS)
            l2.set_title(f"L2 {d.l2_formula} → {oh}×{ow}")
        self._frame = min(self._frame, d.frames - 1)
        if d.frames != old:
            self.frames_changed.emit(d.frames)
        self._draw_window()

    def _draw_window(self) -> None:
        d = self.data
        top, left, bottom, right = d.window(self._frame)
        self.cells["input"].show_box(top, left, bottom, right)
        r, c = divmod(self._frame, d.out_shape[2])
        for name in ("max", "avg", "l2"):
            if name == "l2" and d.l2_map is None:
                self.cells[name].hide_box()
            else:
                self.cells[name].show_box(r, c, r, c)
        h, w = d.input_map.shape
        window = d.input_map[max(top, 0): min(bottom, h - 1) + 1, max(left, 0): min(right, w - 1) + 1]
        taps = window.size
        listed = f" [{', '.join(fmt(v) for v in window.ravel())}]" if taps <= MAX_LISTED else ""
        parts = [f"<b>window {self._frame + 1} of {d.frames}</b> → output ({r}, {c}): rows {top}…{bottom}, "
                 f"cols {left}…{right}, {taps} of {d.kernel * d.kernel} taps inside the map{listed}",
                 f"max = <b>{fmt(d.max_map[r, c])}</b>", f"average = <b>{fmt(d.avg_map[r, c])}</b>"]
        if d.l2_map is not None:
            parts.append(f"L2 = <b>{fmt(d.l2_map[r, c])}</b>")
        self.readout.setText(" · ".join(parts))
