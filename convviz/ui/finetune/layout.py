"""The Fine-tune tab's layout: a message line, then the steps in two columns (one on a small screen)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QBoxLayout, QLabel, QVBoxLayout, QWidget

from convviz.ui.widgets.reflow import Reflow
from convviz.ui.widgets.sections import rule

#: Below this width (of the tab's viewport) the steps stack in one column instead of two.
TWO_COLUMNS_MIN_WIDTH = 900


def message_line() -> QLabel:
    """A red, selectable, word-wrapped line, hidden until it has text."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet("color: #b00020; font-weight: 600;")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setVisible(False)
    return label


class StepColumns:
    """Lays ``message`` above two columns of steps on ``owner``; reflows them into one when narrow."""

    def __init__(self, owner: QWidget, message: QLabel, left: list[QWidget], right: list[QWidget]):
        columns = []
        for widgets in (left, right):
            column = QVBoxLayout()
            for i, w in enumerate(widgets):
                if i:
                    column.addWidget(rule())
                column.addWidget(w)
            column.addStretch(1)
            columns.append(column)
        self.left_box = QWidget()
        self.left_box.setLayout(columns[0])
        self.left_box.setMinimumWidth(360)
        self.left_box.setMaximumWidth(500)
        self.divider = rule(vertical=True)
        self.columns = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.columns.setSpacing(14)
        self.columns.addWidget(self.left_box, 4)
        self.columns.addWidget(self.divider)
        self.columns.addLayout(columns[1], 5)
        layout = QVBoxLayout(owner)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(message)
        layout.addLayout(self.columns)
        self.reflow = Reflow(owner, TWO_COLUMNS_MIN_WIDTH, self._reflow)

    def _reflow(self, narrow: bool) -> None:
        """Two columns when there is room, the steps one below the other on a small screen."""
        self.columns.setDirection(QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight)
        self.divider.setVisible(not narrow)
        self.left_box.setMaximumWidth(16777215 if narrow else 500)
