"""A photo with an overlay (heat or class colours) and labelled boxes: pyqtgraph items made once.

Scene coordinates are the pixels of the photo at its view size (the size the results carry);
boxes arrive in photo pixels and are scaled. The photo, the overlay, the box outlines and their
tags are created once and updated with ``setImage`` / ``setRect`` / ``setText``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QGraphicsRectItem

from convviz.ui.widgets.image_view import cosmetic_pen

#: Most boxes a canvas draws (the best ones).
MAX_BOXES = 12


def ink_for(rgb) -> QColor:
    """Black or white text, whichever reads on a background of colour ``rgb``."""
    return QColor(0, 0, 0) if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150 else QColor(255, 255, 255)


class PhotoCanvas(pg.GraphicsLayoutWidget):
    """The photo, one RGBA overlay and up to :data:`MAX_BOXES` labelled boxes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(None)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setMouseEnabled(x=False, y=False)
        self.photo = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(1)
        self.view.addItem(self.photo)
        self.view.addItem(self.overlay)
        font = QFont()
        font.setPointSize(9)
        self.rects, self.tags = [], []
        for _ in range(MAX_BOXES):
            rect = QGraphicsRectItem()
            rect.setZValue(2)
            tag = pg.TextItem(anchor=(0, 0))
            tag.setFont(font)
            tag.setZValue(3)
            self.view.addItem(rect)
            self.view.addItem(tag)
            rect.hide()
            tag.hide()
            self.rects.append(rect)
            self.tags.append(tag)
        self.size_hw: tuple[int, int] | None = None
        self.rgb: np.ndarray | None = None  #: the photo shown (None: blank)
        self.setMinimumSize(180, 120)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(420, 300)

    def set_photo(self, rgb: np.ndarray | None) -> None:
        """The (Hv, Wv, 3) photo at view size (None: blank); clears the overlay and boxes."""
        self.rgb = rgb
        if rgb is None:
            self.photo.clear()
            self.size_hw = None
        else:
            self.photo.setImage(rgb, autoLevels=False, levels=(0, 255))
            self.size_hw = (int(rgb.shape[0]), int(rgb.shape[1]))
            self.view.setRange(QRectF(0, 0, self.size_hw[1], self.size_hw[0]), padding=0.0)
        self.set_overlay(None)
        self.set_boxes([], [], (1, 1))

    def set_overlay(self, rgba: np.ndarray | None) -> None:
        """An (Hv, Wv, 4) uint8 layer over the photo (None hides it)."""
        if rgba is None:
            self.overlay.hide()
            return
        self.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay.show()

    def set_boxes(self, boxes, colours, photo_hw) -> None:
        """Draw the first :data:`MAX_BOXES` of ``boxes`` (photo pixels) in ``colours`` (RGB), labelled."""
        shown = list(boxes)[:MAX_BOXES]
        if self.size_hw is not None:
            sy, sx = self.size_hw[0] / photo_hw[0], self.size_hw[1] / photo_hw[1]
        else:
            sy = sx = 1.0
        for k, (rect, tag) in enumerate(zip(self.rects, self.tags)):
            if k >= len(shown):
                rect.hide()
                tag.hide()
                continue
            box, rgb = shown[k], tuple(int(c) for c in colours[k])
            colour = QColor(*rgb)
            rect.setPen(cosmetic_pen(colour, 2.5))
            rect.setRect(QRectF(box.x0 * sx, box.y0 * sy, (box.x1 - box.x0) * sx, (box.y1 - box.y0) * sy))
            tag.setText(f"{box.label} {box.score:.2f}")
            tag.setColor(ink_for(rgb))
            tag.fill = pg.mkBrush(colour)
            tag.setPos(box.x0 * sx, box.y0 * sy)
            tag.setZValue(3 + (MAX_BOXES - k) / MAX_BOXES)  # the best box's tag on top where tags overlap
            rect.show()
            tag.show()

    def boxes_shown(self) -> int:
        return sum(rect.isVisible() for rect in self.rects)
