"""Reflow a panel for the room it has: two columns on a wide window, stacked on a laptop.

The room is the width of the panel's host (the tab's scroll-area viewport), not the panel's
own width: a panel held wider than its viewport by its minimum size would otherwise never
learn that it should stack, and the tab would scroll sideways.

:class:`FitHeight` keeps a widget at least as tall as its layout needs at its width, wrapped
labels included: splitters, tab widgets and scroll areas read minimum sizes, not heightForWidth,
and a plot with a fixed or minimum height squeezed below it would spill over the text beside it.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget


class Reflow(QObject):
    """Calls ``apply(narrow)`` whenever the room of ``panel`` crosses ``threshold`` pixels."""

    def __init__(self, panel: QWidget, threshold: int, apply: Callable[[bool], None]):
        super().__init__(panel)
        self.panel, self.threshold, self.apply = panel, threshold, apply
        self.narrow: bool | None = None
        self._host: QWidget | None = None
        panel.installEventFilter(self)

    def room(self) -> int:
        return self._host.width() if self._host is not None else self.panel.width()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt name)
        kind = event.type()
        if watched is self.panel and kind in (QEvent.Type.Show, QEvent.Type.ParentChange):
            host = self.panel.parentWidget()
            if host is not self._host:
                if self._host is not None:
                    self._host.removeEventFilter(self)
                if host is not None:
                    host.installEventFilter(self)
                self._host = host
            self.update()
        elif watched is self._host and kind == QEvent.Type.Resize:
            self.update()
        return False

    def update(self) -> None:
        narrow = self.room() < self.threshold
        if narrow != self.narrow:
            self.narrow = narrow
            self.apply(narrow)


class FitHeight(QObject):
    """Keeps ``widget``'s minimum height at its layout's minimum height for the widget's current width.

    A hidden widget (a tab page not on show) asks for nothing, so it does not size its tab widget.
    """

    def __init__(self, widget: QWidget):
        super().__init__(widget)
        self.widget = widget
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt name)
        if watched is self.widget and event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest,
                                                       QEvent.Type.Show, QEvent.Type.Hide):
            self.update()
        return False

    def needed(self) -> int:
        layout = self.widget.layout()
        if layout is None or self.widget.isHidden():
            return 0
        if layout.hasHeightForWidth():
            return layout.minimumHeightForWidth(max(1, self.widget.width()))
        return layout.minimumSize().height()

    def update(self) -> None:
        need = self.needed()
        if need != self.widget.minimumHeight():
            self.widget.setMinimumHeight(need)
