"""Top-k predictions as a horizontal bar chart: class names on the left, percentages at the bars.

A percentage sits right of its bar where it fits inside the plot, else inside the bar; this is
decided in pixels and again whenever the plot is resized (a narrow window clipped "67.1 %" to "67.1").
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QFontMetrics

TOP_K = 5
BAR_COLOUR = QColor(66, 133, 244)
TOP_COLOUR = QColor(255, 140, 0)
LABEL_CHARS = 22
AXIS_MIN, AXIS_MAX = 60, 150  #: the class-name axis is as wide as its longest name, within these pixels
GAP_PX = 4


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
        left.setWidth(AXIS_MAX)
        left.setStyle(tickLength=0)
        font = QFont()
        font.setPointSize(10)
        left.setTickFont(font)
        self._metrics = QFontMetrics(font)
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
        self._percents = np.zeros(TOP_K)
        self.set_predictions([])
        plot.getViewBox().sigResized.connect(lambda _vb: self._place_texts())

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
            else:
                ticks.append((i, ""))
        self._percents = probs
        self.bars.setOpts(width=probs)
        left = self.getPlotItem().getAxis("left")
        widest = max((self._metrics.horizontalAdvance(label) for _, label in ticks), default=0)
        left.setWidth(int(min(AXIS_MAX, max(AXIS_MIN, widest + 12))))
        left.setTicks([ticks])
        self._place_texts()

    def _place_texts(self) -> None:
        """Each percentage right of its bar if it fits inside the plot there, else inside the bar."""
        px = self.getPlotItem().getViewBox().viewPixelSize()[0] or 1.0  # percent per pixel
        for i, text in enumerate(self.texts):
            if i >= len(self.predictions):
                text.setText("")
                continue
            percent = float(self._percents[i])
            label = f"{percent:.1f} %" if percent >= 0.1 else "<0.1 %"
            width = (self._metrics.horizontalAdvance(label) + 2 * GAP_PX) * px
            inside = percent + width > 100.0 and percent >= width
            text.setText(label)
            text.setColor(QColor(255, 255, 255) if inside else QColor(40, 40, 40))
            text.setAnchor((1, 0.5) if inside else (0, 0.5))
            text.setPos(percent - GAP_PX * px if inside else percent + GAP_PX * px, i)

    def text_fits(self, row: int) -> bool:
        """Whether the percentage of ``row`` lies across the plot's width, none of it clipped (for tests)."""
        text, view = self.texts[row].sceneBoundingRect(), self.getPlotItem().getViewBox().sceneBoundingRect()
        return view.left() <= text.left() and text.right() <= view.right()
