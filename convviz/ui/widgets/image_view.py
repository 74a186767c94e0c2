"""The photo, with the square the model actually sees and a unit's receptive field.

Coordinates are photo pixels (x right, y down). The model's input is the centre crop
``Preprocess.crop_box`` resized to ``input_size``; :func:`field_rect` maps a unit's
receptive field (model-input pixels, from the layer table) back onto the photo.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem

CROP_COLOUR = QColor(255, 255, 255)
FIELD_COLOUR = QColor(255, 140, 0)


def field_rect(row, out_row: int, out_col: int, preprocess, width: int, height: int) -> tuple[float, float, float, float]:
    """(x, y, w, h) on the photo of the receptive field of unit (out_row, out_col) of ``row``.

    ``row.start`` is the input-pixel index of unit 0's centre, ``row.jump`` the step between
    units and ``row.rf`` the field size, all (H, W); pixel ``i`` spans ``[i, i + 1)``.
    """
    left, top, right, _ = preprocess.crop_box(width, height)
    scale = (right - left) / preprocess.input_size
    (rf_h, rf_w), (jump_h, jump_w), (start_h, start_w) = row.rf, row.jump, row.start
    y0 = start_h + out_row * jump_h + 0.5 - rf_h / 2
    x0 = start_w + out_col * jump_w + 0.5 - rf_w / 2
    return left + x0 * scale, top + y0 * scale, rf_w * scale, rf_h * scale


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage (e.g. from the clipboard) → (H, W, 4) uint8 RGBA copy."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height, stride = rgba.width(), rgba.height(), rgba.bytesPerLine()
    buffer = np.frombuffer(rgba.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 4].reshape(height, width, 4).copy()


def cosmetic_pen(colour: QColor, width: float, style=Qt.PenStyle.SolidLine):
    """A pen of ``width`` screen pixels at any zoom."""
    pen = pg.mkPen(colour, width=width, style=style)
    pen.setCosmetic(True)
    return pen


class PhotoView(pg.GraphicsLayoutWidget):
    """One ImageItem for the photo, a shade outside the model's crop and two boxes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(None)
        self.ci.layout.setContentsMargins(4, 4, 4, 4)
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.photo = pg.ImageItem(axisOrder="row-major")
        self.photo.setAutoDownsample(True)
        self.view.addItem(self.photo)
        self.shade = QGraphicsPathItem()
        self.shade.setBrush(QColor(0, 0, 0, 120))
        self.shade.setPen(pg.mkPen(None))
        self.crop = QGraphicsRectItem()
        self.crop.setPen(cosmetic_pen(CROP_COLOUR, 1.5, Qt.PenStyle.DashLine))
        self.crop_label = pg.TextItem(color=CROP_COLOUR, anchor=(0, 0), fill=QColor(0, 0, 0, 140))
        self.field = QGraphicsRectItem()
        self.field.setPen(cosmetic_pen(FIELD_COLOUR, 2.5))
        self.field.setBrush(QColor(255, 140, 0, 45))
        self.field_label = pg.TextItem(color=FIELD_COLOUR, anchor=(0, 0), fill=QColor(0, 0, 0, 150))
        self.padding = QGraphicsPathItem()  # the part of the field when part of it falls in the padding
        self.padding.setPen(cosmetic_pen(FIELD_COLOUR, 1.5, Qt.PenStyle.DashLine))
        self.padding.setBrush(QBrush(QColor(255, 140, 0, 110), Qt.BrushStyle.BDiagPattern))
        items = (self.shade, self.crop, self.crop_label, self.padding, self.field, self.field_label)
        for z, item in enumerate(items, start=1):
            item.setZValue(z)
            self.view.addItem(item)
        self.clear_field()
        self._size: tuple[int, int] | None = None
        self._preprocess = None
        policy = self.sizePolicy()
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt API)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        """As tall as the photo needs at this width (so the photo sits at the top, unboxed)."""
        w, h = self._size or (3, 2)
        return int(min(max(width * h / w, 160), 1.3 * width)) + 8

    def set_image(self, rgb: np.ndarray) -> None:
        """Show an (H, W, 3) uint8 photo and fit it into the view."""
        self.photo.setImage(rgb, autoLevels=False, levels=(0, 255))
        self._size = (int(rgb.shape[1]), int(rgb.shape[0]))
        self.updateGeometry()
        self.view.setRange(QRectF(0, 0, *self._size), padding=0.01)
        self.clear_field()
        self._update_crop()

    def set_preprocess(self, preprocess) -> None:
        """Use this model input recipe for the crop box (None hides it)."""
        self._preprocess = preprocess
        self.clear_field()
        self._update_crop()

    def crop_rect(self) -> QRectF | None:
        return self.crop.rect() if self.crop.isVisible() else None

    def show_field(self, rect: tuple[float, float, float, float], text: str) -> None:
        """Draw the receptive field ``rect`` (x, y, w, h in photo pixels) with a caption.

        The box is clipped to the model's input crop; the part of the field that lies in the
        padding around the input (beyond the crop) is outlined dashed and hatched.
        """
        x, y, w, h = rect
        full = QRectF(x, y, w, h)
        crop = self.crop.rect() if self.crop.isVisible() else None
        shown = full.intersected(crop) if crop is not None else full
        padded = crop is not None and not crop.contains(full)
        self.field.setRect(shown)
        band = QPainterPath()  # odd-even fill: only the part outside the input is hatched
        band.addRect(full)
        band.addRect(shown)
        self.padding.setPath(band)
        self.padding.setVisible(padded)
        self.field_label.setText(f"{text} · part in padding (hatched)" if padded else text)
        width = self._size[0] if self._size else x + w
        sx, sw = shown.x(), shown.width()
        right_half = sx + sw / 2 > width / 2  # keep the caption over the photo, not past its edge
        self.field_label.setAnchor((1, 0) if right_half else (0, 0))
        self.field_label.setPos(min(sx + sw, width) if right_half else max(sx, 0.0), max(shown.y(), 0.0))
        self.field.setVisible(True)
        self.field_label.setVisible(True)

    def clear_field(self) -> None:
        self.field.setVisible(False)
        self.padding.setVisible(False)
        self.field_label.setVisible(False)

    def field_shown(self) -> QRectF | None:
        """The receptive-field box currently drawn, clipped to the model's input (None if hidden)."""
        return self.field.rect() if self.field.isVisible() else None

    def field_in_padding(self) -> QRectF | None:
        """The whole field, drawn when part of it lies in the padding beyond the input (else None)."""
        return self.padding.path().boundingRect() if self.padding.isVisible() else None

    def _update_crop(self) -> None:
        visible = self._size is not None and self._preprocess is not None
        for item in (self.shade, self.crop, self.crop_label):
            item.setVisible(visible)
        if not visible:
            return
        width, height = self._size
        left, top, right, bottom = self._preprocess.crop_box(width, height)
        box = QRectF(left, top, right - left, bottom - top)
        self.crop.setRect(box)
        path = QPainterPath()
        path.addRect(QRectF(0, 0, width, height))
        path.addRect(box)  # odd-even fill: the crop stays clear, the rest is shaded
        self.shade.setPath(path)
        size = self._preprocess.input_size
        self.crop_label.setText(f"model input {size}×{size}")
        self.crop_label.setPos(left, top)
