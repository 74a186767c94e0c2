"""All channels of one layer as one colour-mapped mosaic, plus one channel shown large.

The mosaic arrives in [0, 1] (each tile scaled to its own min..max, NaN gaps); the large
view rebuilds the chosen channel's real values from its tile and min/max, so its colour
bar reads in the layer's own units. Items are created once and updated with ``setImage``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QGraphicsRectItem, QGridLayout, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget,
)

from convviz.core.colormaps import lookup_table
from convviz.core.mosaic import to_rgb8

VIEW_BACKGROUND = QColor(32, 34, 38)
HIGHLIGHT = QColor(255, 140, 0)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _image_view(widget: pg.GraphicsLayoutWidget) -> tuple[pg.ViewBox, pg.ImageItem]:
    widget.setBackground(VIEW_BACKGROUND)
    widget.ci.layout.setContentsMargins(4, 4, 4, 4)
    view = widget.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
    item = pg.ImageItem(axisOrder="row-major")
    view.addItem(item)
    return view, item


class MosaicView(QWidget):
    """Mosaic of a layer's channels; hover reads a tile, click (or the spin box) enlarges it."""

    channel_changed = Signal(int)
    unit_hovered = Signal(object)  #: (layer name, row, col) of the unit under the mouse, or None

    def __init__(self, parent: QWidget | None = None, colormap: str = "viridis"):
        super().__init__(parent)
        self.lut = lookup_table(colormap)
        self.colormap = pg.ColorMap(np.linspace(0, 1, len(self.lut)), self.lut)
        self.name = ""
        self.mosaic: np.ndarray | None = None
        self.shape: tuple = ()
        self.stats = None
        self._hovered = None

        self.title = QLabel("Select a layer in the table to see all of its channels.")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.hover = QLabel(" ")
        self.hover.setStyleSheet("color: #666;")
        self.mosaic_widget = pg.GraphicsLayoutWidget()
        self.mosaic_widget.setMinimumSize(240, 240)
        self.view, self.image = _image_view(self.mosaic_widget)
        self.image.setLookupTable(self.lut)
        self.highlight = QGraphicsRectItem()
        pen = pg.mkPen(HIGHLIGHT, width=2)
        pen.setCosmetic(True)
        self.highlight.setPen(pen)
        self.highlight.setZValue(5)
        self.highlight.setVisible(False)
        self.view.addItem(self.highlight)
        self.mosaic_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.mosaic_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)

        self.channel_widget = pg.GraphicsLayoutWidget()
        self.channel_widget.setMinimumSize(220, 140)  # shrinks on small screens instead of covering the form
        self.channel_widget.setMaximumSize(300, 230)
        self.channel_view, self.channel_image = _image_view(self.channel_widget)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=self.colormap, interactive=False, width=12)
        self.colorbar.setImageItem(self.channel_image)
        self.channel_widget.addItem(self.colorbar)
        self.colorbar.getAxis("right").setTextPen(QColor(220, 220, 220))

        self.spin = QSpinBox()
        self.spin.setRange(0, 0)
        self.spin.setMinimumWidth(80)
        self.spin.setToolTip("Channel shown large; click a tile in the mosaic to pick it")
        self.spin.valueChanged.connect(self.select_channel)
        self.values = {key: QLabel("–") for key in ("size", "min", "max", "mean")}
        self._build_layout()

    def _build_layout(self) -> None:
        form = QGridLayout()
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(4)
        form.addWidget(QLabel("Channel"), 0, 0)
        form.addWidget(self.spin, 0, 1)
        for i, (key, text) in enumerate((("size", "Size"), ("min", "Min"), ("max", "Max"), ("mean", "Mean")), 1):
            form.addWidget(QLabel(text), i, 0)
            self.values[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addWidget(self.values[key], i, 1)
        form.setColumnStretch(1, 1)
        hint = QLabel("Hover a tile to read it and to see that unit's receptive field on the photo; "
                      "click a tile to show it large. Each tile is scaled to its own min…max; "
                      "the colour bar shows real values.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #666;")
        side = QVBoxLayout()
        side.setSpacing(8)
        side.addWidget(self.channel_widget, 1)
        side.addLayout(form)
        side.addWidget(hint)
        side.addStretch(0)
        body = QHBoxLayout()
        body.setSpacing(12)
        body.addWidget(self.mosaic_widget, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.hover)
        layout.addLayout(body, 1)

    # ------------------------------------------------------------------ data
    def set_activation(self, name: str, mosaic: np.ndarray, shape: tuple, stats, type_name: str = "") -> None:
        """Show a new mosaic (from the worker); keeps the chosen channel when it still exists."""
        new_layer = name != self.name or self.stats is None or stats.channels != self.stats.channels
        self.name, self.mosaic, self.shape, self.stats = name, mosaic, tuple(shape), stats
        self.image.setImage(mosaic, autoLevels=False, levels=(0.0, 1.0))
        self.view.setRange(QRectF(0, 0, mosaic.shape[1], mosaic.shape[0]), padding=0.01)
        kind = f" · {type_name}" if type_name else ""
        h, w = stats.tile_hw
        what = f"{stats.channels} channels of {h}×{w}" if len(shape) == 3 else f"{stats.channels} values (1×1 each)"
        self.title.setText(f"{name}{kind} · {what}")
        self.spin.blockSignals(True)
        self.spin.setRange(0, max(stats.channels - 1, 0))
        if new_layer:
            self.spin.setValue(0)
        self.spin.blockSignals(False)
        self.select_channel(self.spin.value())
        self._set_hovered(None)

    def mark_stale(self) -> None:
        """The image or model changed: what is shown is being recomputed."""
        if self.mosaic is not None and not self.title.text().endswith("(updating…)"):
            self.title.setText(f"{self.title.text()}  (updating…)")
        self._set_hovered(None)

    def _set_hovered(self, unit) -> None:
        if unit is None:
            self.hover.setText(" ")
        if unit != self._hovered:
            self._hovered = unit
            self.unit_hovered.emit(unit)

    def clear(self, message: str = "Select a layer in the table to see all of its channels.") -> None:
        self.name, self.mosaic, self.stats = "", None, None
        self.image.clear()
        self.channel_image.clear()
        self.highlight.setVisible(False)
        self.title.setText(message)
        for label in self.values.values():
            label.setText("–")
        self._set_hovered(None)

    def tile(self, channel: int) -> np.ndarray:
        """The [0, 1] tile of ``channel`` cut from the mosaic."""
        (h, w), gap = self.stats.tile_hw, self.stats.gap
        _, cols = self.stats.grid
        r, q = divmod(channel, cols)
        return self.mosaic[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w]

    def channel_values(self, channel: int) -> np.ndarray:
        """Real activation values of ``channel`` (rebuilt from its tile and min/max)."""
        lo, hi = float(self.stats.minimum[channel]), float(self.stats.maximum[channel])
        return lo + self.tile(channel) * (hi - lo)

    def select_channel(self, channel: int) -> None:
        """Show ``channel`` large with its size, min, max and mean."""
        if self.stats is None or not 0 <= channel < self.stats.channels:
            return
        if self.spin.value() != channel:
            self.spin.setValue(channel)  # re-enters through valueChanged
            return
        lo, hi = float(self.stats.minimum[channel]), float(self.stats.maximum[channel])
        values = self.channel_values(channel)
        self.channel_image.setImage(values, autoLevels=False, levels=(lo, hi if hi > lo else lo + 1e-6))
        self.colorbar.setLevels((lo, hi if hi > lo else lo + 1e-6))
        self.channel_view.setRange(QRectF(0, 0, values.shape[1], values.shape[0]), padding=0.02)
        h, w = self.stats.tile_hw
        self.values["size"].setText(f"{h}×{w}")
        self.values["min"].setText(_fmt(lo))
        self.values["max"].setText(_fmt(hi))
        self.values["mean"].setText(_fmt(float(self.stats.mean[channel])))
        (th, tw), gap = self.stats.tile_hw, self.stats.gap
        _, cols = self.stats.grid
        r, q = divmod(channel, cols)
        self.highlight.setRect(QRectF(q * (tw + gap) - 0.5, r * (th + gap) - 0.5, tw + 1, th + 1))
        self.highlight.setVisible(True)
        self.channel_changed.emit(channel)

    def colored_mosaic(self) -> np.ndarray | None:
        """(H, W, 3) uint8 of the mosaic as shown (white gaps), for export."""
        if self.mosaic is None:
            return None
        return to_rgb8(self.mosaic, self.lut)

    # ----------------------------------------------------------------- mouse
    def _channel_under(self, scene_pos: QPointF) -> int | None:
        if self.stats is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.view.mapSceneToView(scene_pos)
        return self.stats.tile_at(point.y(), point.x())

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        channel = self._channel_under(scene_pos)
        unit = None
        if channel is None:
            self.hover.setText(" ")
        else:
            s = self.stats
            point = self.view.mapSceneToView(scene_pos)
            (h, w), gap = s.tile_hw, s.gap
            row, col = int(point.y()) % (h + gap), int(point.x()) % (w + gap)
            where = f" · unit ({row}, {col})" if len(self.shape) == 3 else ""
            self.hover.setText(f"channel {channel}{where}: min {_fmt(s.minimum[channel])} · "
                               f"max {_fmt(s.maximum[channel])} · mean {_fmt(s.mean[channel])}")
            unit = (self.name, row, col) if len(self.shape) == 3 else None
        self._set_hovered(unit)

    def _on_mouse_clicked(self, event) -> None:
        channel = self._channel_under(event.scenePos())
        if channel is not None:
            self.select_channel(channel)
