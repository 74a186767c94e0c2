"""A fast, clean grid of coloured cells (QPainter) with numbers and overlays, plus the
colour-blind-safe palette (Okabe–Ito) of the Convolution panel.

The cell colours arrive as one (rows, cols, 4) uint8 array; the canvas turns it into a
cached pixmap (with grid lines and numbers) and only the light overlays — the sliding
window, hover highlights — are drawn on every repaint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPixmap, QRegion
from PySide6.QtWidgets import QSizePolicy, QWidget

# Okabe–Ito, the colour-blind-safe palette.
ORANGE = (230, 159, 0)
SKY = (86, 180, 233)
GREEN = (0, 158, 115)
YELLOW = (240, 228, 66)
BLUE = (0, 114, 178)
VERMILLION = (213, 94, 0)
PURPLE = (204, 121, 167)
WHITE = (255, 255, 255)
PAD_GREY = (226, 226, 226)


def tint(rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """``rgb`` mixed with white: ``amount`` 1 is the full colour, 0 is white."""
    return tuple(int(round(255 - amount * (255 - c))) for c in rgb)


def qcolor(rgb: tuple[int, int, int], alpha: int = 255) -> QColor:
    return QColor(rgb[0], rgb[1], rgb[2], alpha)


def _diverging_table(n: int = 256) -> np.ndarray:
    anchors = np.array([BLUE, tint(BLUE, 0.45), (247, 247, 247), tint(VERMILLION, 0.45), VERMILLION], float)
    pos = np.linspace(0, 1, len(anchors))
    x = np.linspace(0, 1, n)
    return np.stack([np.interp(x, pos, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


DIVERGING = _diverging_table()


def diverging_rgba(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Signed values → RGBA: blue (negative), white (0), vermillion (positive), symmetric."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    limit = float(np.abs(values).max()) if limit is None else float(limit)
    scaled = 0.5 + 0.5 * values / (limit if limit > 0 else 1.0)
    idx = np.clip((scaled * 255).round(), 0, 255).astype(np.intp)
    rgba = np.empty(values.shape + (4,), np.uint8)
    rgba[..., :3] = DIVERGING[idx]
    rgba[..., 3] = 255
    return rgba


def solid(rows: int, cols: int, rgb: tuple[int, int, int], alpha: int = 255) -> np.ndarray:
    """A (rows, cols, 4) array of one colour."""
    out = np.empty((rows, cols, 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = alpha
    return out


def _upscale_with_lines(rgba: np.ndarray, n: int) -> np.ndarray:
    """Each cell as an n×n pixel block whose top and left edge (and the grid's closing
    edge) is the cell's own colour 28 % darker; transparent cells stay transparent."""
    rows, cols = rgba.shape[:2]
    dark = rgba.copy()
    dark[..., :3] = (rgba[..., :3].astype(np.uint16) * 184 >> 8).astype(np.uint8)
    big = np.empty((rows * n + 1, cols * n + 1, 4), np.uint8)
    big[:-1, :-1] = np.repeat(np.repeat(rgba, n, axis=0), n, axis=1)
    big[::n, :-1] = np.repeat(np.concatenate([dark, dark[-1:]], axis=0), n, axis=1)
    big[:-1, ::n] = np.repeat(np.concatenate([dark, dark[:, -1:]], axis=1), n, axis=0)
    big[-1, -1] = dark[-1, -1]
    return big


@dataclass(frozen=True)
class Overlay:
    """Something drawn over the cells each repaint.

    ``cells`` (n, 2) are (row, col) grid cells to fill with ``fill`` and/or outline with
    ``outline``; ``rect`` (r0, c0, r1, c1), inclusive, is outlined as one box; ``dots``
    marks the centre of each cell instead of filling it.
    """

    cells: np.ndarray | None = None
    rect: tuple[int, int, int, int] | None = None
    fill: QColor | None = None
    outline: QColor | None = None
    width: float = 2.0
    dashed: bool = False
    dots: bool = False
    min_px: float = 0.0  # a ``rect`` is drawn at least this many pixels wide (a locator on tiny cells)


class GridCanvas(QWidget):
    """Square cells fitted into the widget; emits the hovered cell as (row, col) or None."""

    cell_hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None, max_cell: int = 56, min_size: int = 140):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self._max_cell = max_cell
        self._rgba = solid(1, 1, WHITE, 0)
        self._labels: list[list[str]] | None = None
        self._hatch: np.ndarray | None = None
        self._hidden: np.ndarray | None = None
        self._reveal = 0
        self._inner: tuple[int, int, int, int] | None = None
        self._stack = 0
        self._overlays: list[Overlay] = []
        self._cache: tuple[QPixmap, QPixmap | None, QPixmap | None] | None = None
        self._cache_key = None
        self._hover = None

    # ---- state -------------------------------------------------------------------
    def set_grid(self, rgba: np.ndarray, labels: list[list[str]] | None = None,
                 inner: tuple[int, int, int, int] | None = None, stack: int = 0,
                 hatch: np.ndarray | None = None, hidden: np.ndarray | None = None) -> None:
        """Cell colours (rows, cols, 4), optional per-cell text, the framed region, the
        number of shadow layers drawn behind (a stack of channels) and cells to hatch.

        With ``hidden`` (same shape as ``rgba``) only the first :meth:`set_reveal` cells in
        row-major order show ``rgba`` and their text; the others show ``hidden`` — an
        output filling in costs a clip per frame, not a re-render.
        """
        self._rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        self._labels, self._inner, self._stack = labels, inner, int(stack)
        self._hatch = hatch if hatch is not None and hatch.any() else None
        self._hidden = None if hidden is None else np.ascontiguousarray(hidden, dtype=np.uint8)
        self._cache = None
        self.update()

    def set_reveal(self, count: int) -> None:
        """Number of cells (row-major) that show their real colour (see :meth:`set_grid`)."""
        if count != self._reveal:
            self._reveal = int(count)
            self.update()

    def set_overlays(self, overlays: list[Overlay]) -> None:
        self._overlays = list(overlays)
        self.update()

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self._rgba.shape[:2]

    @property
    def shadow(self) -> int:
        """Pixels the stack of channels behind the grid adds to its width and height."""
        return 7 * self._stack

    def size_for_cell(self, cell: float, rows: int | None = None, cols: int | None = None) -> tuple[int, int]:
        """(width, height) of a canvas whose grid gets exactly ``cell`` px per cell."""
        r, c = self.grid_shape
        rows, cols = r if rows is None else rows, c if cols is None else cols
        extra = 8 + self.shadow
        return int(np.ceil(cols * cell)) + extra, int(np.ceil(rows * cell)) + extra

    # ---- geometry ----------------------------------------------------------------
    def _layout(self) -> tuple[float, float, float]:
        """(cell size, x origin, y origin) of the grid inside the widget."""
        rows, cols = self.grid_shape
        shadow = 7 * self._stack
        avail_w, avail_h = self.width() - 8 - shadow, self.height() - 8 - shadow
        cell = max(0.5, min(avail_w / cols, avail_h / rows, self._max_cell))
        if cell >= 4:
            cell = float(int(cell))
        x0 = (self.width() - shadow - cell * cols) / 2
        y0 = 4 + shadow  # top-aligned, just under the caption
        return cell, round(x0), round(y0)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """Grid cell under widget position ``pos`` (None outside the grid)."""
        cell, x0, y0 = self._layout()
        rows, cols = self.grid_shape
        c, r = int((pos.x() - x0) // cell), int((pos.y() - y0) // cell)
        return (r, c) if 0 <= r < rows and 0 <= c < cols and self._rgba[r, c, 3] > 0 else None

    def cell_center(self, row: int, col: int) -> QPointF:
        cell, x0, y0 = self._layout()
        return QPointF(x0 + (col + 0.5) * cell, y0 + (row + 0.5) * cell)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(360, 360)

    # ---- painting ----------------------------------------------------------------
    def _new_pixmap(self, cell: float) -> tuple[QPixmap, QPainter]:
        rows, cols = self.grid_shape
        ratio = self.devicePixelRatioF()
        width, height = max(1, int(np.ceil(cols * cell)) + 1), max(1, int(np.ceil(rows * cell)) + 1)
        pixmap = QPixmap(int(width * ratio), int(height * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.transparent)
        return pixmap, QPainter(pixmap)

    def _render_cells(self, cell: float, rgba: np.ndarray) -> QPixmap:
        """Cells, grid lines, hatching and frame at ``cell`` px."""
        rows, cols = self.grid_shape
        pixmap, p = self._new_pixmap(cell)
        if cell >= 6:
            big = _upscale_with_lines(rgba, int(cell))
            p.drawImage(QPointF(0, 0), QImage(big.data, big.shape[1], big.shape[0], big.shape[1] * 4,
                                              QImage.Format_RGBA8888))
        else:
            p.drawImage(QRectF(0, 0, cols * cell, rows * cell),
                        QImage(rgba.data, cols, rows, cols * 4, QImage.Format_RGBA8888))
        if self._hatch is not None:
            brush = QBrush(qcolor(VERMILLION, 170), Qt.BDiagPattern if cell >= 6 else Qt.Dense5Pattern)
            p.setPen(Qt.NoPen)
            for r, c in np.argwhere(self._hatch):
                p.fillRect(QRectF(c * cell + 1, r * cell + 1, cell - 1, cell - 1), brush)
        if self._inner is not None:
            r0, c0, r1, c1 = self._inner
            p.setPen(QPen(QColor(40, 40, 40), 2 if cell >= 3 else 1))
            p.drawRect(QRectF(c0 * cell, r0 * cell, (c1 - c0 + 1) * cell, (r1 - r0 + 1) * cell))
        p.end()
        return pixmap

    def _render_labels(self, cell: float) -> QPixmap | None:
        """The numbers, on a transparent pixmap drawn above the overlay fills."""
        if self._labels is None or cell < 13:
            return None
        pixmap, p = self._new_pixmap(cell)
        self._draw_labels(p, cell)
        p.end()
        return pixmap

    def _draw_labels(self, p: QPainter, cell: float) -> None:
        longest = max((len(t) for row in self._labels for t in row), default=0)
        if longest == 0:
            return
        font = QFont(self.font())
        size = max(7.0, min(cell * 0.42, 18.0))
        font.setPixelSize(int(size))
        metrics = QFontMetricsF(font)
        widest = max((metrics.horizontalAdvance(t) for row in self._labels for t in row), default=0)
        while widest > cell - 3 and size > 7:
            size -= 1
            font.setPixelSize(int(size))
            metrics = QFontMetricsF(font)
            widest = max(metrics.horizontalAdvance(t) for row in self._labels for t in row)
        if widest > cell - 2:
            return
        p.setFont(font)
        luminance = self._rgba[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        dark, light = QColor(25, 25, 25), QColor(255, 255, 255)
        for r, row in enumerate(self._labels):
            for c, text in enumerate(row):
                if text:
                    p.setPen(dark if luminance[r, c] > 110 else light)
                    p.drawText(QRectF(c * cell, r * cell, cell, cell), Qt.AlignCenter, text)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        cell, x0, y0 = self._layout()
        rows, cols = self.grid_shape
        key = (cell, rows, cols)
        if self._cache is None or self._cache_key != key:
            hidden = None if self._hidden is None else self._render_cells(cell, self._hidden)
            self._cache = (self._render_cells(cell, self._rgba), self._render_labels(cell), hidden)
            self._cache_key = key
        cells, labels, hidden = self._cache
        p = QPainter(self)
        for k in range(self._stack, 0, -1):  # channels behind the front one
            p.setPen(QPen(QColor(140, 140, 140), 1))
            p.setBrush(QColor(238, 238, 238))
            p.drawRect(QRectF(x0 + 7 * k, y0 - 7 * k, cols * cell, rows * cell))
        revealed = None
        if hidden is not None:
            p.drawPixmap(QPointF(x0, y0), hidden)
            r, c = divmod(max(0, min(self._reveal, rows * cols)), cols)
            revealed = QRegion(x0, y0, int(np.ceil(cols * cell)) + 1, int(round(r * cell)))
            revealed += QRegion(x0, y0 + int(round(r * cell)), int(round(c * cell)), int(np.ceil(cell)))
        self._draw_clipped(p, cells, QPointF(x0, y0), revealed)
        p.setRenderHint(QPainter.Antialiasing, True)
        for overlay in self._overlays:
            if overlay.outline is None:
                self._draw_overlay(p, overlay, cell, x0, y0)
        if labels is not None:
            self._draw_clipped(p, labels, QPointF(x0, y0), revealed)
        for overlay in self._overlays:
            if overlay.outline is not None:
                self._draw_overlay(p, overlay, cell, x0, y0)
        p.end()

    @staticmethod
    def _draw_clipped(p: QPainter, pixmap: QPixmap, at: QPointF, region: QRegion | None) -> None:
        """Draw ``pixmap``, limited to ``region`` (save/restore: toggling clipping off and
        on again is ignored when the widget is rendered by ``grab()``)."""
        p.save()
        if region is not None:
            p.setClipRegion(region)
        p.drawPixmap(at, pixmap)
        p.restore()

    def _draw_overlay(self, p: QPainter, o: Overlay, cell: float, x0: float, y0: float) -> None:
        pen = QPen(Qt.NoPen)
        if o.outline is not None:
            pen = QPen(o.outline, o.width)
            pen.setJoinStyle(Qt.MiterJoin)
            if o.dashed:
                pen.setStyle(Qt.DashLine)
        # on tiny cells, tap dots would merge into a blob: the window's box says enough
        if o.cells is not None and len(o.cells) and not (o.dots and cell < 5):
            p.setPen(pen)
            p.setBrush(o.fill if o.fill is not None else Qt.NoBrush)
            inset = o.width / 2 if o.outline is not None else 0
            for r, c in o.cells:
                if o.dots:
                    radius = max(1.5, cell * 0.16)
                    p.drawEllipse(QPointF(x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell), radius, radius)
                else:
                    p.drawRect(QRectF(x0 + c * cell + inset, y0 + r * cell + inset,
                                      cell - 2 * inset, cell - 2 * inset))
        if o.rect is not None:
            r0, c0, r1, c1 = o.rect
            p.setPen(pen)
            p.setBrush(Qt.NoBrush)
            half = o.width / 2
            box = QRectF(x0 + c0 * cell - half, y0 + r0 * cell - half,
                         (c1 - c0 + 1) * cell + o.width, (r1 - r0 + 1) * cell + o.width)
            if box.width() < o.min_px or box.height() < o.min_px:
                centre = box.center()
                box.setSize(box.size().expandedTo(QSizeF(o.min_px, o.min_px)))
                box.moveCenter(centre)
            p.drawRect(box)

    # ---- hover -------------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._set_hover(self.cell_at(event.position()))

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._set_hover(None)

    def _set_hover(self, cell) -> None:
        if cell != self._hover:
            self._hover = cell
            self.cell_hovered.emit(cell)
