"""The first convolution's filters as small RGB pictures beside its maps (a tab of the lab host).

Filter k made channel k of the first conv's output, so picking a filter picks that channel
in the mosaic and the other way round. The chosen filter is drawn large with its weights.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from convviz.core.views.mosaic_layout import columns_for
from convviz.ui.widgets.channel_view import image_view
from convviz.ui.widgets.image_view import cosmetic_pen

FILTERS_KEY = "layers.first_filters"
GAP_GREY = 200
HIGHLIGHT = QColor(255, 140, 0)


def filter_sheet(rgb: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """(N, kH, kW, 3) pictures → one (rows·(kH+gap)−gap, cols·(kW+gap)−gap, 3) uint8 sheet, grey gaps."""
    n, h, w, _ = rgb.shape
    rows = -(-n // cols)
    padded = np.full((rows * cols, h + gap, w + gap, 3), GAP_GREY, dtype=np.uint8)
    padded[:n, :h, :w] = rgb
    sheet = padded.reshape(rows, cols, h + gap, w + gap, 3).transpose(0, 2, 1, 3, 4)
    return sheet.reshape(rows * (h + gap), cols * (w + gap), 3)[: rows * (h + gap) - gap, : cols * (w + gap) - gap]


class FiltersView(QWidget):
    """Lab-host tab ``filters``: all first-layer filters, and the chosen one large with its weights."""

    channel_requested = Signal(int)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self.data = None
        self.layer: str | None = None
        self.cols = 1
        self.selected = 0
        self.caption = QLabel("The first convolution's filters appear when the model is loaded.")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #444;")
        self.hover = QLabel(" ")
        self.hover.setStyleSheet("color: #666;")
        self.hover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.sheet_widget = pg.GraphicsLayoutWidget()
        self.sheet_widget.setMinimumSize(160, 120)
        self.view, self.sheet = image_view(self.sheet_widget)
        self.mark = QGraphicsRectItem()
        self.mark.setPen(cosmetic_pen(HIGHLIGHT, 2))
        self.mark.setZValue(5)
        self.view.addItem(self.mark)
        self.sheet_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.sheet_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.large_widget = pg.GraphicsLayoutWidget()
        self.large_widget.setFixedSize(120, 120)
        self.large_view, self.large = image_view(self.large_widget)
        self.weights = QLabel("")
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.weights.setFont(font)
        self.weights.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weights.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        side = QVBoxLayout()
        side.addWidget(self.large_widget)
        side.addWidget(self.weights, 1)
        body = QHBoxLayout()
        body.addWidget(self.sheet_widget, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.caption)
        layout.addWidget(self.hover)
        layout.addLayout(body, 1)

    # ---- lab protocol -----------------------------------------------------------
    def bind(self, session) -> None:
        self.session = session
        session.view_ready.connect(self._on_view)
        session.view_failed.connect(self._on_failed)
        session.request_view(FILTERS_KEY, "first_filters")  # the session replays it for every new model

    def set_layer(self, name: str, row) -> None:
        self.layer = name

    def applies_to(self, row) -> bool:
        return row is not None and self.data is not None and row.name == self.data.layer

    def is_ready(self) -> bool:
        return self.data is not None

    # ---- data -------------------------------------------------------------------
    def _on_view(self, key: str, data) -> None:
        if key != FILTERS_KEY:
            return
        self.session.drop_view(FILTERS_KEY)  # weights do not change with the photo: asked again per model
        self.data = data
        n, _, kh, kw = data.weights.shape
        scale = "each filter scaled to its own largest |weight|" if not data.shared else "one scale for all"
        self.caption.setText(
            f"{data.layer}: {n} filters of {kh}×{kw}×{data.weights.shape[1]}, drawn as RGB ({scale}). "
            "Grey is 0; a bright colour means the filter responds to that colour there, a dark one to its absence. "
            "Filter k makes channel k of the maps; click one to pick its channel.")
        self._lay_out()
        self.select(min(self.selected, n - 1))
        self.changed.emit()

    def _on_failed(self, key: str, message: str) -> None:
        if key == FILTERS_KEY:
            self.data = None
            self.sheet.clear()
            self.caption.setText(f"No first-layer filters: {message}")
            self.changed.emit()

    def _lay_out(self) -> None:
        n, kh, kw = self.data.rgb.shape[:3]
        size = self.sheet_widget.size()
        self.cols = columns_for(n, (kh, kw), size.width(), size.height())
        sheet = filter_sheet(self.data.rgb, self.cols)
        self.sheet.setImage(sheet, autoLevels=False, levels=(0, 255))
        self.view.setRange(QRectF(0, 0, sheet.shape[1], sheet.shape[0]), padding=0.02)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self.data is not None:
            self._lay_out()
            self.select(self.selected)

    def origin(self, k: int) -> tuple[int, int]:
        kh, kw = self.data.rgb.shape[1:3]
        r, q = divmod(k, self.cols)
        return r * (kh + 1), q * (kw + 1)

    def select(self, k: int) -> None:
        """Mark filter ``k`` and show it large with its weights per colour."""
        if self.data is None or not 0 <= k < len(self.data.rgb):
            return
        self.selected = k
        kh, kw = self.data.rgb.shape[1:3]
        y, x = self.origin(k)
        self.mark.setRect(QRectF(x - 0.5, y - 0.5, kw + 1, kh + 1))
        self.large.setImage(self.data.rgb[k], autoLevels=False, levels=(0, 255))
        self.large_view.setRange(QRectF(0, 0, kw, kh), padding=0.02)
        w = self.data.weights[k]
        names = ("R", "G", "B") if w.shape[0] == 3 else tuple(f"in{i}" for i in range(w.shape[0]))
        blocks = [f"{name}:\n" + "\n".join(" ".join(f"{v:+.2f}" for v in line) for line in w[c])
                  for c, name in enumerate(names[:4])]
        bias = "" if self.data.bias is None else f"\nbias {self.data.bias[k]:+.3f}"
        self.weights.setText(f"filter {k}\n" + "\n".join(blocks) + bias)

    def filter_at(self, scene_pos: QPointF) -> int | None:
        if self.data is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.view.mapSceneToView(scene_pos)
        kh, kw = self.data.rgb.shape[1:3]
        r, dy = divmod(int(np.floor(point.y())), kh + 1)
        q, dx = divmod(int(np.floor(point.x())), kw + 1)
        k = r * self.cols + q
        ok = point.x() >= 0 and point.y() >= 0 and dy < kh and dx < kw and q < self.cols and k < len(self.data.rgb)
        return k if ok else None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        k = self.filter_at(scene_pos)
        if k is None:
            self.hover.setText(" ")
            return
        w = self.data.weights[k]
        self.hover.setText(f"filter {k}: weights {w.min():+.3g} … {w.max():+.3g} (click to pick channel {k})")

    def _on_mouse_clicked(self, event) -> None:
        k = self.filter_at(event.scenePos())
        if k is not None:
            self.select(k)
            self.channel_requested.emit(k)
