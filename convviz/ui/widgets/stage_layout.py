"""Layout helpers shared by the Convolution panel's views: a stage whose children are
placed by code, cached label heights, and the small HTML pieces (legend, captions).
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from convviz.ui.widgets.grid_canvas import WHITE


def hex_color(rgb) -> str:
    return "#%02x%02x%02x" % tuple(rgb)


def legend_html(items) -> str:
    """A row of coloured swatches with their meaning; an item never breaks across lines."""
    return "&nbsp;&nbsp;&nbsp; ".join(
        f"<nobr><span style='color:{'#666666' if rgb == WHITE else hex_color(rgb)}; font-size:15px'>"
        f"{'□' if rgb == WHITE else '■'}</span>&nbsp;{text.replace(' ', '&nbsp;')}</nobr>"
        for rgb, text in items)


def caption_html(title: str, detail: str = "") -> str:
    """Two-line grid caption: the bold title, then a grey detail line (kept even when empty)."""
    return f"{title}<br><span style='color:#555555; font-size:11px'>{detail or '&nbsp;'}</span>"


def rich_labels(parent: QWidget, count: int, align=None) -> list[QLabel]:
    """``count`` word-wrapped rich-text labels on ``parent`` (placed later by the stage)."""
    labels = []
    for _ in range(count):
        label = QLabel(parent)
        label.setTextFormat(Qt.RichText)
        label.setWordWrap(True)
        if align is not None:
            label.setAlignment(align)
        labels.append(label)
    return labels


class Stage(QWidget):
    """White backdrop whose children are placed by code rather than by a QLayout.

    ``arrange(width, height, apply)`` places the children inside a ``width`` × ``height``
    stage when ``apply`` is true, and returns the height the stage needs at ``width`` with
    its grids at their smallest. That height is the stage's ``heightForWidth``: a scroll
    area around the panel only scrolls when even the smallest grids do not fit, and the
    grids take whatever room the text leaves them.
    """

    def __init__(self, arrange, minimum: QSize, parent: QWidget | None = None):
        super().__init__(parent)
        self._arrange = arrange
        self._minimum = QSize(minimum)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.Window, QColor(255, 255, 255))
        self.setPalette(palette)
        policy = QSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def relayout(self) -> None:
        """Place the children for the current size (after their content changed)."""
        if self.width() > 0 and self.height() > 0:
            self._arrange(self.width(), self.height(), True)

    def needed_height(self, width: int) -> int:
        return max(self._minimum.height(), int(self._arrange(width, 0, False)))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.relayout()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt name)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt name)
        return self.needed_height(width)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(self._minimum)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(self._minimum)


_HEIGHTS: dict = {}  # (label, text, style, width, lines) → height: text layout is the slow part of a re-place


def label_height(label: QLabel, width: int, lines: int = 1) -> int:
    """Height ``label`` needs at ``width`` (word wrapped), at least ``lines`` lines of its font."""
    key = (id(label), label.text(), label.styleSheet(), int(width), lines)
    height = _HEIGHTS.get(key)
    if height is None:
        label.ensurePolished()
        margins = label.contentsMargins()
        height = lines * label.fontMetrics().lineSpacing() + margins.top() + margins.bottom()
        if label.text():
            height = max(height, label.heightForWidth(int(width)) if label.wordWrap() else label.sizeHint().height())
        if len(_HEIGHTS) > 4096:
            _HEIGHTS.clear()
        _HEIGHTS[key] = height
    return height
