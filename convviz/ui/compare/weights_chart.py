"""The relative weight change ‖ΔW‖/‖W‖ of every layer as bars in model order, and the layers that moved most.

Frozen layers sit at exactly zero; a replaced head (other classes, other shapes) is an orange bar to
the top, since no relative change is defined for it. Hovering a bar names its layer.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QWidget

from convviz.ui.widgets.sections import vstack

MOVED = (59, 81, 139)
REPLACED = (255, 140, 0)
TABLE_ROWS = 8


class WeightsChart(QWidget):
    """Bars of the relative weight change per layer, a hover line and a table of the largest."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.changes = ()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(190)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("left", "weight change (%)")
        self.plot.setLabel("bottom", "layers with weights, in model order (frozen: 0)")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=MOVED)
        self.heads = pg.BarGraphItem(x=[], height=[], width=0.8, brush=REPLACED)
        self.plot.addItem(self.bars)
        self.plot.addItem(self.heads)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse)
        self.hover = QLabel(" ")
        self.hover.setStyleSheet("color: #555;")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["layer", "type", "parameters", "‖ΔW‖/‖W‖"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setFixedHeight(26 + 24 * TABLE_ROWS)
        vstack(self, self.plot, self.hover, self.table, spacing=4)

    def set_changes(self, changes) -> None:
        """Show a :func:`~convviz.core.where.compare.weight_changes` result."""
        self.changes = tuple(changes)
        values = np.array([c.change * 100 if c.change is not None else np.nan for c in self.changes], float)
        top = np.nanmax(values) if np.isfinite(values).any() and np.nanmax(values) > 0 else 1.0
        x = np.arange(len(self.changes))
        moved = np.isfinite(values)
        self.bars.setOpts(x=x[moved], height=values[moved], width=0.8)
        replaced = ~moved
        self.heads.setOpts(x=x[replaced], height=np.full(int(replaced.sum()), top), width=0.8)
        self.plot.setXRange(-1, max(1, len(self.changes)), padding=0)
        self.plot.setYRange(0, top * 1.05, padding=0)
        ranked = sorted(self.changes, key=lambda c: (c.status != "replaced", -(c.change or 0.0)))
        ranked = [c for c in ranked if c.status != "unchanged"][:TABLE_ROWS]
        self.table.setRowCount(len(ranked))
        for i, c in enumerate(ranked):
            change = c.note.join(("replaced (", ")")) if c.status == "replaced" else f"{c.change * 100:.3g} %"
            for j, text in enumerate((c.layer, c.type, f"{c.params:,}", change)):
                item = QTableWidgetItem(text)
                if j >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 4
                                  + sum(self.table.rowHeight(i) for i in range(len(ranked))))
        self.table.setVisible(bool(ranked))
        self.hover.setText("Hover a bar for its layer." if self.changes else " ")

    def _on_mouse(self, pos) -> None:
        if not self.changes or not self.plot.sceneBoundingRect().contains(pos):
            return
        index = int(round(self.plot.getPlotItem().vb.mapSceneToView(pos).x()))
        if 0 <= index < len(self.changes):
            c = self.changes[index]
            what = ("unchanged (exactly 0)" if c.status == "unchanged" else f"replaced ({c.note})"
                    if c.status == "replaced" else f"{c.change * 100:.3g} %")
            self.hover.setText(f"{c.layer} ({c.type}, {c.params:,} parameters): {what}")
