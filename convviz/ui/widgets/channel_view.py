"""One channel of a layer shown large, in its own units, optionally laid over the model's input.

The overlay puts the channel on the photo as the model saw it (the centre crop resized to
the input size): unit (i, j) covers the input pixels around its centre
``start + (i, j)·jump``, so the map and the photo line up as the layer's stride says.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

VIEW_BACKGROUND = QColor(32, 34, 38)
OVERLAY_OPACITY = 0.6


def image_view(widget: pg.GraphicsLayoutWidget) -> tuple[pg.ViewBox, pg.ImageItem]:
    """A locked-aspect, y-down ViewBox with one row-major ImageItem, on a dark background."""
    widget.setBackground(VIEW_BACKGROUND)
    widget.ci.layout.setContentsMargins(4, 4, 4, 4)
    view = widget.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
    item = pg.ImageItem(axisOrder="row-major")
    view.addItem(item)
    return view, item


def _fmt(value: float) -> str:
    return f"{value:.3g}"


class ChannelView(QWidget):
    """A channel large with a colour bar in real units; hover reads one unit."""

    unit_hovered = Signal(object)  #: (layer, row, col) or None

    def __init__(self, lut: np.ndarray, parent: QWidget | None = None):
        super().__init__(parent)
        self.lut = lut
        self.name = ""
        self.maps: np.ndarray | None = None
        self.shape: tuple = ()
        self.channel = 0
        self.field_row = None  #: LayerRow of the layer (start / jump for the overlay)
        self.photo_rgb: np.ndarray | None = None  #: the model's input as RGB (S, S, 3)

        self.channel_widget = pg.GraphicsLayoutWidget()
        self.channel_widget.setMinimumSize(200, 150)
        self.view, self.photo = image_view(self.channel_widget)
        self.photo.setVisible(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(1)
        self.view.addItem(self.image)
        colormap = pg.ColorMap(np.linspace(0, 1, len(lut)), lut)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=colormap, interactive=False, width=12)
        self.colorbar.setImageItem(self.image)
        self.channel_widget.addItem(self.colorbar)
        self.colorbar.getAxis("right").setTextPen(QColor(220, 220, 220))
        self.channel_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self.spin = QSpinBox()
        self.spin.setRange(0, 0)
        self.spin.setMinimumWidth(72)
        self.spin.setToolTip("Channel shown large; click a tile in the mosaic to pick it")
        self.overlay = QCheckBox("Overlay on photo")
        self.overlay.setToolTip("Lay the channel over the model's input (the centre crop), aligned by the layer's "
                                "stride")
        self.overlay.toggled.connect(self._apply_overlay)
        self.values = {key: QLabel("–") for key in ("size", "min", "max", "mean", "unit")}
        form = QGridLayout()
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(3)
        form.addWidget(QLabel("Channel"), 0, 0)
        form.addWidget(self.spin, 0, 1)
        names = (("size", "Size"), ("min", "Min"), ("max", "Max"), ("mean", "Mean"), ("unit", "Hovered"))
        for i, (key, text) in enumerate(names, 1):
            form.addWidget(QLabel(text), i, 0)
            self.values[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addWidget(self.values[key], i, 1)
        self.values["unit"].setWordWrap(True)
        form.setColumnStretch(1, 1)
        side = QVBoxLayout()
        side.setSpacing(6)
        side.addLayout(form)
        side.addWidget(self.overlay)
        side.addStretch(1)
        self.side = side
        body = QHBoxLayout(self)
        body.setContentsMargins(6, 6, 6, 6)
        body.setSpacing(10)
        body.addWidget(self.channel_widget, 1)
        body.addLayout(side)

    def set_layer(self, name: str, maps: np.ndarray, shape: tuple) -> None:
        self.name, self.maps, self.shape = name, maps, tuple(shape)

    def set_field(self, row, photo_rgb: np.ndarray | None) -> None:
        """The layer's table row (unit centres) and the model-input RGB used by the overlay."""
        self.field_row, self.photo_rgb = row, photo_rgb
        self._apply_overlay()

    def overlay_possible(self) -> bool:
        row = self.field_row
        return (self.photo_rgb is not None and row is not None and row.jump is not None and self.maps is not None
                and self.maps.shape[1:] != (1, 1))

    def show_channel(self, channel: int) -> None:
        """Show ``channel`` of the current layer with its size, min, max and mean."""
        self.channel = channel
        values = self.maps[channel]
        lo, hi = float(values.min()), float(values.max())
        top = hi if hi > lo else lo + 1e-6
        self.image.setImage(values, autoLevels=False, levels=(lo, top))
        self.colorbar.setLevels((lo, top))
        h, w = values.shape
        self.values["size"].setText(f"{h}×{w}")
        self.values["min"].setText(_fmt(lo))
        self.values["max"].setText(_fmt(hi))
        self.values["mean"].setText(_fmt(float(values.mean())))
        self.values["unit"].setText("–")
        self._apply_overlay()

    def _apply_overlay(self) -> None:
        if self.maps is None:
            return
        h, w = self.maps.shape[1:]
        on = self.overlay.isChecked() and self.overlay_possible()
        self.overlay.setEnabled(self.maps.shape[1:] != (1, 1) and self.field_row is not None
                                and self.field_row.jump is not None)
        if on:
            size = self.photo_rgb.shape[0]
            (jh, jw), (sh, sw) = self.field_row.jump, self.field_row.start
            self.photo.setImage(self.photo_rgb, autoLevels=False, levels=(0, 255))
            self.photo.setRect(QRectF(0, 0, size, size))
            self.image.setRect(QRectF(sw + 0.5 - jw / 2, sh + 0.5 - jh / 2, w * jw, h * jh))
            self.image.setOpacity(OVERLAY_OPACITY)
            self.view.setRange(QRectF(0, 0, size, size), padding=0.02)
        else:
            self.image.setRect(QRectF(0, 0, w, h))
            self.image.setOpacity(1.0)
            self.view.setRange(QRectF(0, 0, w, h), padding=0.02)
        self.photo.setVisible(on)

    def clear(self) -> None:
        self.maps = None
        self.image.clear()
        self.photo.setVisible(False)
        for label in self.values.values():
            label.setText("–")

    def unit_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(row, col) of the channel's unit under ``scene_pos``."""
        if self.maps is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.image.mapFromScene(scene_pos)
        row, col = int(np.floor(point.y())), int(np.floor(point.x()))
        h, w = self.maps.shape[1:]
        return (row, col) if 0 <= row < h and 0 <= col < w else None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        found = self.unit_at(scene_pos)
        if found is None:
            self.values["unit"].setText("–")
            self.unit_hovered.emit(None)
            return
        row, col = found
        self.values["unit"].setText(f"({row}, {col}) = {_fmt(float(self.maps[self.channel, row, col]))}")
        spatial = len(self.shape) == 3 and self.maps.shape[1:] != (1, 1)
        self.unit_hovered.emit((self.name, row, col) if spatial else None)
