"""Top-k predictions as a horizontal bar chart: class names on the left, percentages at the bars."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont

TOP_K = 5
BAR_COLOUR = QColor(66, 133, 244)
TOP_COLOUR = QColor(255, 140, 0)
LABEL_CHARS = 22


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


class PredictionsView(pg.PlotWidget):
    """One BarGraphItem and k text items, created once and updated with ``setOpts``."""

    def __init__(self, parent=None):
        super().__init__(parent, background=None)
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=True, y=False, alpha=0.2)
        plot.invertY(True)
        plot.setXRange(0, 100, padding=0)
        plot.setYRange(-0.6, TOP_K - 0.4, padding=0)
        plot.setLabel("bottom", "probability (%)")
        left = plot.getAxis("left")
        left.setWidth(150)
        left.setStyle(tickLength=0)
        font = QFont()
        font.setPointSize(10)
        left.setTickFont(font)
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setTextPen(QColor(40, 40, 40))
            axis.setPen(QColor(150, 150, 150))
        plot.getAxis("bottom").setTicks([[(v, f"{v}") for v in range(0, 101, 25)]])
        self.bars = pg.BarGraphItem(x0=np.zeros(TOP_K), y=np.arange(TOP_K), height=0.64, width=np.zeros(TOP_K),
                                    brushes=[TOP_COLOUR] + [BAR_COLOUR] * (TOP_K - 1), pen=pg.mkPen(None))
        plot.addItem(self.bars)
        self.texts = []
        for i in range(TOP_K):
            text = pg.TextItem(anchor=(0, 0.5), color=QColor(30, 30, 30))
            text.setFont(font)
            text.setPos(0, i)
            plot.addItem(text)
            self.texts.append(text)
        self.predictions: list[dict] = []
        self.set_predictions([])

    def set_predictions(self, predictions: list[dict]) -> None:
        """Show ``[{label, index, prob}, …]`` (best first); an empty list clears the chart."""
        self.predictions = list(predictions[:TOP_K])
        probs = np.zeros(TOP_K)
        ticks = []
        for i in range(TOP_K):
            if i < len(self.predictions):
                entry = self.predictions[i]
                probs[i] = 100.0 * float(entry["prob"])
                ticks.append((i, _short(str(entry["label"]))))
                self._place_text(self.texts[i], i, probs[i])
            else:
                ticks.append((i, ""))
                self.texts[i].setText("")
        self.bars.setOpts(width=probs)
        self.getPlotItem().getAxis("left").setTicks([ticks])

    @staticmethod
    def _place_text(text: pg.TextItem, row: int, percent: float) -> None:
        label = f"{percent:.1f} %" if percent >= 0.1 else "<0.1 %"
        inside = percent > 78
        text.setText(label)
        text.setColor(QColor(255, 255, 255) if inside else QColor(40, 40, 40))
        text.setAnchor((1, 0.5) if inside else (0, 0.5))
        text.setPos(percent - 1 if inside else percent + 1, row)
