"""Bring the lab tabs of the Layers panel into view in the tab's scroll area, and keep them there.

On a laptop screen the stacked Layers panel is taller than its tab: the labs sit below the fold.
When a lab is chosen (its tab clicked, or ``--lab``), the scroll area is scrolled to the lab tabs
(all of them if they fit, else from their top) and kept there while their size settles (the
lab's view arrives, its text wraps), until the user scrolls or another layer is picked.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint
from PySide6.QtWidgets import QScrollArea, QWidget

_SETTLING = (QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show)


class Reveal(QObject):
    """Scrolls ``panel``'s scroll area (its parent's parent) to ``target`` on :meth:`reveal`."""

    def __init__(self, panel: QWidget, target: QWidget):
        super().__init__(panel)
        self.panel, self.target = panel, target
        self.pinned = False
        self._watching = False

    def area(self) -> QScrollArea | None:
        parent = self.panel.parentWidget()
        area = parent.parentWidget() if parent is not None else None
        return area if isinstance(area, QScrollArea) and area.widget() is self.panel else None

    def reveal(self) -> None:
        """Scroll to the target now and keep it in view until :meth:`unpin` (or the user scrolls)."""
        self.pinned = True
        area = self.area()
        if area is not None and not self._watching:
            self._watching = True
            bar = area.verticalScrollBar()
            bar.actionTriggered.connect(self.unpin)  # the user's scrolling, never setValue
            bar.rangeChanged.connect(lambda *_: self.pinned and self.scroll())  # after the area took the new size
            self.target.installEventFilter(self)
            self.panel.installEventFilter(self)
        self.scroll()

    def unpin(self, *_args) -> None:
        self.pinned = False

    def scroll(self) -> None:
        area = self.area()
        if area is None or not self.target.isVisible():
            return
        if self.target.height() > area.viewport().height():
            area.verticalScrollBar().setValue(self.target.mapTo(self.panel, QPoint(0, 0)).y())
        else:
            area.ensureWidgetVisible(self.target, 0, 0)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt name)
        if self.pinned and event.type() in _SETTLING and watched in (self.target, self.panel):
            self.scroll()
        return False
