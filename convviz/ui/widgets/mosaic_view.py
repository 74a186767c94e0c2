"""All channels of one layer as one colour-mapped mosaic that fills the pane's width.

The raw (C, H, W) values arrive from the worker; tiling, scaling (each tile to its own
min…max, or all to the layer's range) and the channel order (index, mean, max) are
re-done here in numpy, so a toggle or a resize never waits for a worker. Items are
created once and updated with ``setImage``. The chosen channel is shown large by
:class:`~convviz.ui.widgets.channel_view.ChannelView` (``self.channel``).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox, QGraphicsRectItem, QLabel, QSizePolicy, QWidget,
)

from convviz.core.views.colormaps import lookup_table
from convviz.core.views.mosaic import indexed_lut, to_rgb8
from convviz.core.views.mosaic_layout import ORDERS, columns_for, layout_for, tile_indices, tile_maps

from .sections import hrow, vstack
from .channel_view import ChannelView, image_view
from .image_view import cosmetic_pen

HIGHLIGHT = QColor(255, 140, 0)
ORDER_TEXT = {"index": "number", "mean": "mean ↓", "max": "max ↓"}


def fmt(value: float) -> str:
    return f"{value:.3g}"


class _Canvas(pg.GraphicsLayoutWidget):
    resized = Signal()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.resized.emit()


class MosaicView(QWidget):
    """Mosaic of a layer's channels; hover reads a unit, click (or the spin box) enlarges a channel."""

    channel_changed = Signal(int)
    unit_hovered = Signal(object)  #: (layer name, row, col) of the unit under the mouse, or None

    def __init__(self, parent: QWidget | None = None, colormap: str = "viridis"):
        super().__init__(parent)
        self.lut = lookup_table(colormap)
        self.name = ""
        self.type_name = ""
        self.maps: np.ndarray | None = None  #: raw (C, H, W) values of the layer
        self._mosaic: np.ndarray | None = None
        self.shape: tuple = ()
        self.stats = None  #: :class:`~convviz.core.views.mosaic_layout.MosaicLayout`
        self.per_channel = True
        self.order = "index"
        self._hovered = None

        self.title = QLabel("Select a layer to see all of its channels.")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.scale_combo = QComboBox()
        self.scale_combo.addItems(["per channel", "whole layer"])
        self.scale_combo.setToolTip("Colour scale of the tiles: each tile its own min…max, or one range for "
                                    "the whole layer (shows which channels are strong)")
        self.scale_combo.currentIndexChanged.connect(lambda i: self.set_per_channel(i == 0))
        self.order_combo = QComboBox()
        self.order_combo.addItems([ORDER_TEXT[o] for o in ORDERS])
        self.order_combo.setToolTip("Order of the tiles: channel number, or by mean / max, largest first")
        self.order_combo.currentIndexChanged.connect(lambda i: self.set_order(ORDERS[i]))
        self.hover = QLabel(" ")
        self.hover.setStyleSheet("color: #666;")
        self.hover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the pane
        self.scale_note = QLabel(" ")
        self.scale_note.setStyleSheet("color: #666;")
        self.scale_note.setWordWrap(True)

        self.mosaic_widget = _Canvas()
        self.mosaic_widget.setMinimumSize(200, 140)
        self.view, self.image = image_view(self.mosaic_widget)
        self.image.setLookupTable(indexed_lut(self.lut))  # the mosaic is drawn as indices (tile_indices)
        self.highlight = QGraphicsRectItem()
        self.highlight.setPen(cosmetic_pen(HIGHLIGHT, 2))
        self.highlight.setZValue(5)
        self.highlight.setVisible(False)
        self.view.addItem(self.highlight)
        self.mosaic_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.mosaic_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.mosaic_widget.resized.connect(self._on_resized)

        self.channel = ChannelView(self.lut)
        self.channel.spin.valueChanged.connect(self.select_channel)
        self.channel.unit_hovered.connect(self._set_hovered)
        self.values = self.channel.values
        self.spin = self.channel.spin

        controls = hrow("Scale", self.scale_combo, 8, "Order", self.order_combo, None)
        vstack(self, self.title, controls, self.hover, (self.mosaic_widget, 1), self.scale_note, spacing=4)

    # ------------------------------------------------------------------ data
    @property
    def mosaic(self) -> np.ndarray | None:
        """The tiled [0, 1] image as shown (NaN gaps); the screen draws its 8-bit indices (tile_indices)."""
        if self._mosaic is None and self.maps is not None:
            self._mosaic = tile_maps(self.maps, self.stats)
        return self._mosaic

    def set_activation(self, name: str, maps: np.ndarray, shape: tuple, type_name: str = "") -> None:
        """Show the raw (C, H, W) ``maps`` of layer ``name``; keeps the chosen channel when it still exists."""
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim == 1:
            maps = maps[:, None, None]
        new_layer = name != self.name or self.maps is None or maps.shape[0] != self.maps.shape[0]
        self.name, self.maps, self.shape, self.type_name = name, maps, tuple(shape), type_name
        self._lay_out()
        c, h, w = maps.shape
        kind = f" · {type_name}" if type_name else ""
        what = f"{c} channels of {h}×{w}" if len(self.shape) == 3 and (h, w) != (1, 1) else f"{c} values"
        self.title.setText(f"{name}{kind} · {what}")
        self.channel.set_layer(name, maps, self.shape)
        self.spin.blockSignals(True)
        self.spin.setRange(0, max(c - 1, 0))
        if new_layer:
            self.spin.setValue(0)
        self.spin.blockSignals(False)
        self.select_channel(self.spin.value())
        self._set_hovered(None)

    def _columns(self) -> int:
        c, h, w = self.maps.shape
        size = self.mosaic_widget.size()
        return columns_for(c, (h, w), max(size.width() - 8, 50), max(size.height() - 8, 50))

    def _lay_out(self, cols: int | None = None) -> None:
        """Tile the maps for the current pane size, scaling and order."""
        self.stats = layout_for(self.maps, cols or self._columns(), per_channel=self.per_channel, order=self.order)
        self._mosaic = None  # the float mosaic is made when read (exports)
        indices = tile_indices(self.maps, self.stats)
        self.image.setImage(indices, autoLevels=False, levels=None)
        self.view.setRange(QRectF(0, 0, indices.shape[1], indices.shape[0]), padding=0.01)
        s = self.stats
        if self.per_channel:
            self.scale_note.setText("Each tile is scaled to its own min…max (dark = its lowest value, "
                                    "yellow = its highest).")
        else:
            self.scale_note.setText(f"All tiles share the layer's range {fmt(s.minimum.min())} … "
                                    f"{fmt(s.maximum.max())}: bright tiles are strong channels.")
        if self.spin.value() < s.channels:
            self._place_highlight(self.spin.value())

    def _on_resized(self) -> None:
        if self.maps is not None and self._columns() != self.stats.cols:
            self._lay_out()

    def set_per_channel(self, per_channel: bool) -> None:
        self.per_channel = bool(per_channel)
        self.scale_combo.setCurrentIndex(0 if per_channel else 1)
        if self.maps is not None:
            self._lay_out(self.stats.cols)

    def set_order(self, order: str) -> None:
        self.order = order
        self.order_combo.setCurrentIndex(ORDERS.index(order))
        if self.maps is not None:
            self._lay_out(self.stats.cols)

    def mark_stale(self) -> None:
        """The image or model changed: what is shown is being recomputed."""
        if self.maps is not None and not self.title.text().endswith("(updating…)"):
            self.title.setText(f"{self.title.text()}  (updating…)")
        self._set_hovered(None)

    def _set_hovered(self, unit) -> None:
        if unit is None:
            self.hover.setText(" ")
        if unit != self._hovered:
            self._hovered = unit
            self.unit_hovered.emit(unit)

    def clear(self, message: str = "Select a layer to see all of its channels.") -> None:
        self.name, self.maps, self._mosaic, self.stats = "", None, None, None
        self.image.clear()
        self.channel.clear()
        self.highlight.setVisible(False)
        self.title.setText(message)
        self._set_hovered(None)

    def tile(self, channel: int) -> np.ndarray:
        """The [0, 1] tile of ``channel`` cut from the mosaic as shown."""
        (h, w), (y, x) = self.stats.tile_hw, self.stats.origin(channel)
        return self.mosaic[y: y + h, x: x + w]

    def channel_values(self, channel: int) -> np.ndarray:
        """Real activation values of ``channel``."""
        return self.maps[channel]

    def select_channel(self, channel: int) -> None:
        """Show ``channel`` large with its size, min, max and mean."""
        if self.stats is None or not 0 <= channel < self.stats.channels:
            return
        if self.spin.value() != channel:
            self.spin.setValue(channel)  # re-enters through valueChanged
            return
        self.channel.show_channel(channel)
        self._place_highlight(channel)
        self.channel_changed.emit(channel)

    def _place_highlight(self, channel: int) -> None:
        (th, tw), (y, x) = self.stats.tile_hw, self.stats.origin(channel)
        self.highlight.setRect(QRectF(x - 0.5, y - 0.5, tw + 1, th + 1))
        self.highlight.setVisible(True)

    def colored_mosaic(self) -> np.ndarray | None:
        """(H, W, 3) uint8 of the mosaic as shown (white gaps), for export."""
        return None if self.mosaic is None else to_rgb8(self.mosaic, self.lut)

    # ----------------------------------------------------------------- mouse
    def _unit_under(self, scene_pos: QPointF):
        if self.stats is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.view.mapSceneToView(scene_pos)
        return self.stats.unit_at(point.y(), point.x())

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        found = self._unit_under(scene_pos)
        if found is None:
            self._set_hovered(None)
            return
        channel, row, col = found
        s, spatial = self.stats, len(self.shape) == 3 and self.maps.shape[1:] != (1, 1)
        value = float(self.maps[channel, row, col])
        where = f" · unit ({row}, {col})" if spatial else ""
        self.hover.setText(f"channel {channel}{where}: value {fmt(value)}  (channel min {fmt(s.minimum[channel])}"
                           f" · max {fmt(s.maximum[channel])} · mean {fmt(s.mean[channel])})")
        self._set_hovered((self.name, row, col) if spatial else None)

    def _on_mouse_clicked(self, event) -> None:
        found = self._unit_under(event.scenePos())
        if found is not None:
            self.select_channel(found[0])
