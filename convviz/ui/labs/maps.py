"""Map grids for the labs: titled image cells in one pyqtgraph scene, created once.

A :class:`MapGrid` is one ``GraphicsLayoutWidget`` holding named :class:`MapCell` s (a
title, a ViewBox, one ImageItem and an optional highlight box). Cells are updated with
``setImage(..., autoLevels=False)``; the mouse over a cell reports ``(cell name, row, col)``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsRectItem

from convviz.core.views.colormaps import lookup_table
from convviz.ui.widgets.image_view import cosmetic_pen

BACKGROUND = QColor(250, 250, 250)
HIGHLIGHT = QColor(255, 140, 0)
VIRIDIS = lookup_table("viridis")
GRAY = lookup_table("gray")
TITLE_HEIGHT = 20
LOCATOR_PX = 10


def diverging_lut(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 blue → white → red table (negative → zero → positive)."""
    anchors = np.array([(33, 102, 172), (103, 169, 207), (209, 229, 240), (247, 247, 247),
                        (253, 219, 199), (239, 138, 98), (178, 24, 43)], dtype=np.float64)
    positions = np.linspace(0, 1, len(anchors))
    samples = np.linspace(0, 1, n)
    return np.stack([np.interp(samples, positions, anchors[:, c]) for c in range(3)], 1).round().astype(np.uint8)


DIVERGING = diverging_lut()


def symmetric(*arrays) -> tuple[float, float]:
    """Levels (−m, m) with m the largest |value| of ``arrays`` (so white is exactly 0)."""
    m = max((float(np.nanmax(np.abs(a))) for a in arrays if a is not None and a.size), default=0.0)
    m = m if m > 0 else 1.0
    return -m, m


def robust_symmetric(values: np.ndarray, q: float = 99.5) -> tuple[float, float]:
    """Levels (−m, m) with m the ``q``-th percentile of |values| (a few outliers do not wash the map out)."""
    m = float(np.percentile(np.abs(values), q)) if values.size else 0.0
    if m <= 0:
        return symmetric(values)
    return -m, m


def span(*arrays) -> tuple[float, float]:
    """Levels (min, max) over ``arrays``."""
    lo = min(float(np.nanmin(a)) for a in arrays if a is not None and a.size)
    hi = max(float(np.nanmax(a)) for a in arrays if a is not None and a.size)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def fmt(value: float) -> str:
    return f"{value:.4g}"


class Title(pg.LabelItem):
    """A cell title that never widens its column (long titles are clipped, columns stay equal)."""

    def updateMin(self) -> None:  # noqa: N802 (pyqtgraph name)
        bounds = self.itemRect()
        self.setMinimumWidth(0)
        self.setMinimumHeight(bounds.height())
        self._sizeHint = {Qt.SizeHint.MinimumSize: (0, bounds.height()),
                          Qt.SizeHint.PreferredSize: (0, bounds.height()),
                          Qt.SizeHint.MaximumSize: (-1, -1), Qt.SizeHint.MinimumDescent: (0, 0)}
        self.updateGeometry()


class MapCell:
    """One titled map: ViewBox + ImageItem (+ a highlight rectangle), all created once."""

    def __init__(self, layout: pg.GraphicsLayout, name: str, title: str, row: int, col: int):
        self.name = name
        self.label = Title(title, size="9pt", color="#222")
        self.label.setMaximumHeight(TITLE_HEIGHT)
        layout.addItem(self.label, row=2 * row, col=col)
        layout.layout.setRowStretchFactor(2 * row, 0)
        layout.layout.setRowStretchFactor(2 * row + 1, 1)
        layout.layout.setColumnStretchFactor(col, 1)
        self.view = layout.addViewBox(row=2 * row + 1, col=col, lockAspect=True, invertY=True, enableMenu=False)
        self.view.setMouseEnabled(False, False)
        self.view.setBackgroundColor(QColor(235, 235, 235))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.box = QGraphicsRectItem()
        self.box.setPen(cosmetic_pen(HIGHLIGHT, 2.5))
        self.box.setZValue(10)
        self.box.setVisible(False)
        self.view.addItem(self.box)
        self.shape: tuple[int, int] | None = None
        self.values: np.ndarray | None = None

    def set_title(self, text: str) -> None:
        self.label.setText(text)

    def set_map(self, values: np.ndarray, levels: tuple[float, float], lut: np.ndarray = VIRIDIS) -> None:
        """Show ``values`` (H, W) with these levels; the view refits only when the shape changes."""
        values = np.asarray(values, dtype=np.float32)
        self.values = values
        self.image.setImage(values, autoLevels=False, levels=levels, lut=lut)
        shape = values.shape
        if shape != self.shape:
            self.shape = shape
            self.view.setRange(QRectF(0, 0, shape[1], shape[0]), padding=0.02)

    def set_visible(self, visible: bool) -> None:
        self.label.setVisible(visible)
        self.view.setVisible(visible)

    def show_box(self, top: float, left: float, bottom: float, right: float) -> None:
        """Outline cells ``top..bottom`` × ``left..right`` (inclusive, may reach into padding).

        A box smaller than :data:`LOCATOR_PX` screen pixels is drawn that big around the
        same centre, so a 2×2 window on a 112×112 map can still be found.
        """
        w, h = right - left + 1, bottom - top + 1
        px = self.view.viewPixelSize()
        least_w, least_h = (LOCATOR_PX * px[0], LOCATOR_PX * px[1]) if px and px[0] > 0 else (0.0, 0.0)
        cx, cy = left + w / 2, top + h / 2
        w, h = max(w, least_w), max(h, least_h)
        self.box.setRect(QRectF(cx - w / 2, cy - h / 2, w, h))
        self.box.setVisible(True)

    def hide_box(self) -> None:
        self.box.setVisible(False)

    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        if self.values is None or not self.view.isVisible() or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view.mapSceneToView(scene_pos)
        r, c = int(np.floor(p.y())), int(np.floor(p.x()))
        h, w = self.values.shape
        return (r, c) if 0 <= r < h and 0 <= c < w else None


class MapGrid(pg.GraphicsLayoutWidget):
    """Named map cells in a grid; ``hovered`` tells ``(cell name, row, col)`` or None."""

    hovered = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.ci.layout.setSpacing(2)
        self.cells: dict[str, MapCell] = {}
        self._last = None
        self.scene().sigMouseMoved.connect(self._moved)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """As small as allowed: a grid takes the room its layout's stretch gives it, and a lab whose
        text wraps sizes itself by heightForWidth, which reads preferred heights."""
        return self.minimumSize().expandedTo(QSize(160, 120))

    def add_map(self, name: str, title: str, row: int, col: int) -> MapCell:
        cell = MapCell(self.ci, name, title, row, col)
        self.cells[name] = cell
        return cell

    def cell(self, name: str) -> MapCell:
        return self.cells[name]

    def _moved(self, scene_pos) -> None:
        found = None
        for cell in self.cells.values():
            rc = cell.cell_at(scene_pos)
            if rc is not None:
                found = (cell.name, *rc)
                break
        if found != self._last:
            self._last = found
            self.hovered.emit(found)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._last is not None:
            self._last = None
            self.hovered.emit(None)
        super().leaveEvent(event)
