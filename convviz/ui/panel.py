"""The base of every tab of the main window (the list of tabs is :mod:`convviz.ui.registry`).

A panel is a widget that displays what the :class:`~convviz.workers.session.Session`
delivers (views, task results) and forwards intent to it; :meth:`Panel.when_shown` holds a
request back until the tab is on screen. The main window builds one of each entry of
:data:`convviz.ui.registry.PANELS`, calls :meth:`Panel.bind` once, and listens to
``unit_hovered`` (draws that unit's receptive field on the photo), ``open_image_requested``
and ``ready`` (the screenshot harness waits for it).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class Panel(QWidget):
    """A tab: ``bind(session)`` once; ``ready`` when it shows the current model and image."""

    unit_hovered = Signal(object)  #: (layer name, out_row, out_col) or None
    open_image_requested = Signal(str)  #: a path the panel wants shown in every panel
    ready = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self._deferred: list = []  #: requests waiting for the tab to be shown (see when_shown)

    def bind(self, session) -> None:
        """Connect to the session's signals (called once by the main window)."""
        self.session = session

    def is_ready(self) -> bool:
        """True when what the panel shows is complete for the current model and image."""
        return True

    def shortcuts(self) -> list[tuple[str, str]]:
        """(keys, what they do) listed in Help ▸ Keyboard shortcuts."""
        return []

    def when_shown(self, request) -> None:
        """Run ``request`` now if the tab is on screen, else when it is next shown: a hidden tab
        starts no work while the user looks at the other panels."""
        if self.isVisible():
            request()
        elif request not in self._deferred:
            self._deferred.append(request)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            request()
