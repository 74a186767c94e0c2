"""A vector layer (global pooling, the classifier) as a bar chart instead of identical 1×1 tiles.

Bars in channel order or sorted largest first; for the model's logits the top classes
are listed with rank, name, logit and the model's probability — the Predictions view's
numbers, averaged with the mirror image for a model that predicts so — and hovering a bar
names its class.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

BAR_COLOUR = QColor(68, 119, 170)
TOP_COLOUR = QColor(255, 140, 0)
TOP_N = 10


def _fmt(value: float) -> str:
    return f"{value:.3g}"


class VectorView(QWidget):
    """Bars of one number per channel or class; the top classes with names and ranks."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data = None
        self.sorted = False
        self.order: np.ndarray | None = None
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.sort_box = QCheckBox("Sort largest first")
        self.sort_box.toggled.connect(self.set_sorted)
        self.hover = QLabel(" ")
        self.hover.setStyleSheet("color: #666;")
        self.hover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumSize(200, 140)
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.getPlotItem().hideButtons()
        self.bars = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=BAR_COLOUR, pen=pg.mkPen(BAR_COLOUR))
        self.top_marks = pg.ScatterPlotItem(size=7, brush=TOP_COLOUR, pen=None)
        self.plot.addItem(self.bars)
        self.plot.addItem(self.top_marks)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.top_list = QLabel("")
        self.top_list.setTextFormat(Qt.TextFormat.RichText)
        self.top_list.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.top_list.setMinimumWidth(180)
        self.top_list.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.sort_box)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addWidget(self.top_list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(head)
        layout.addWidget(self.hover)
        layout.addLayout(body, 1)

    def set_vector(self, data, type_name: str = "") -> None:
        """Show a :class:`~convviz.core.views.layer.LayerVector`."""
        self.data = data
        n = len(data.values)
        kind = f" · {type_name}" if type_name else ""
        mirror = " · p: the photo and its mirror image, averaged" if data.is_logits and data.mirrored else ""
        self.title.setText(f"{data.layer}{kind} · {n} {data.what}{mirror}")
        self._draw()
        self.top_list.setText(self._top_text())
        self.top_list.setVisible(True)

    def set_sorted(self, on: bool) -> None:
        self.sorted = bool(on)
        if self.sort_box.isChecked() != self.sorted:
            self.sort_box.setChecked(self.sorted)
        if self.data is not None:
            self._draw()

    def _draw(self) -> None:
        values = self.data.values
        self.order = np.argsort(self.data.ranks) if self.sorted else np.arange(len(values))
        shown = values[self.order]
        self.bars.setData(np.arange(len(values) + 1) - 0.5, shown)
        top = np.argsort(self.data.ranks)[: min(TOP_N, len(values))]
        x = np.flatnonzero(np.isin(self.order, top))
        self.top_marks.setData(x, shown[x])
        if not self.sorted:
            axis = "class index" if self.data.is_logits else "channel"
        else:
            axis = "rank (most probable first)" if self.data.is_logits else "rank (largest first)"
        self.plot.setLabel("bottom", axis)
        self.plot.setLabel("left", "logit" if self.data.is_logits else "value")
        self.plot.setXRange(-0.5, len(values) - 0.5, padding=0.01)
        self.plot.enableAutoRange(axis="y")

    def _top_text(self) -> str:
        d = self.data
        top = np.argsort(d.ranks)[: min(TOP_N, len(d.values))]
        if d.is_logits:
            rows = "".join(f"<tr><td>{d.ranks[i]}.</td><td>{html.escape(d.labels[i])}</td>"
                           f"<td align='right'>{_fmt(d.values[i])}</td><td align='right'>{d.probs[i]:.1%}</td></tr>"
                           for i in top)
            head = "<tr><th>#</th><th align='left'>class</th><th>logit</th><th>p</th></tr>"
        else:
            rows = "".join(f"<tr><td>{d.ranks[i]}.</td><td>{d.entry_name(i)}</td><td align='right'>{_fmt(d.values[i])}</td>"
                           "</tr>" for i in top)
            head = "<tr><th>#</th><th align='left'>channel</th><th>value</th></tr>"
        return f"<b>Largest {len(top)}</b><table cellspacing='3'>{head}{rows}</table>"

    def entry_at(self, scene_pos: QPointF) -> int | None:
        """Channel / class index of the bar under ``scene_pos``."""
        if self.data is None or not self.plot.getPlotItem().vb.sceneBoundingRect().contains(scene_pos):
            return None
        x = self.plot.getPlotItem().vb.mapSceneToView(scene_pos).x()
        position = int(np.floor(x + 0.5))
        return int(self.order[position]) if 0 <= position < len(self.order) else None

    def describe(self, index: int) -> str:
        d = self.data
        n = len(d.values)
        if d.is_logits:
            return (f"class {index} “{d.labels[index]}”: logit {_fmt(d.values[index])} · p {d.probs[index]:.2%}"
                    f" · rank {d.ranks[index]} of {n}")
        return f"{d.entry_name(index)}: {_fmt(d.values[index])} · rank {d.ranks[index]} of {n}"

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        index = self.entry_at(scene_pos)
        self.hover.setText(" " if index is None else self.describe(index))

    def clear(self) -> None:
        self.data = None
        self.bars.setData([], [])
        self.top_marks.setData([], [])
        self.top_list.setText("")
        self.hover.setText(" ")
