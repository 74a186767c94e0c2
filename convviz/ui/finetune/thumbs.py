"""Small images on screen: numpy RGB → QPixmap, and a clickable row of thumbnails."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem


def rgb_pixmap(rgb: np.ndarray) -> QPixmap:
    """(H, W, 3) uint8 → QPixmap (the data is copied)."""
    arr = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = arr.shape[:2]
    return QPixmap.fromImage(QImage(arr.data, w, h, w * 3, QImage.Format.Format_RGB888).copy())


class ThumbStrip(QListWidget):
    """A horizontal, scrollable row of thumbnails with captions; a click emits the image's path."""

    clicked_path = Signal(str)

    def __init__(self, icon_side: int = 72, rows: int = 1, captions: bool = False, parent=None):
        super().__init__(parent)
        self.icon_side = icon_side
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(rows > 1)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(icon_side, icon_side))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if rows == 1 else
                                        Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSpacing(2)
        caption = 2 * self.fontMetrics().height() + 4 if captions else 0
        bar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(rows * (icon_side + 12 + caption) + bar + 2 * self.frameWidth())
        self.itemClicked.connect(lambda item: self.clicked_path.emit(item.data(Qt.ItemDataRole.UserRole)))

    def set_items(self, items: list[tuple[str, np.ndarray, str, str]]) -> None:
        """``(path, rgb, caption, tooltip)`` per thumbnail."""
        self.clear()
        for path, rgb, caption, tip in items:
            item = QListWidgetItem(QIcon(rgb_pixmap(rgb)), caption)
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(tip or path)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.addItem(item)
