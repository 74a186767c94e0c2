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
        self._shown_views: dict[str, tuple] = {}  #: key → (kind, layer, args) subscribed while on screen

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

    def view_while_shown(self, key: str, kind: str, layer: str | None = None, **args) -> None:
        """Subscribe view slot ``key`` while the tab is on screen only: a hidden tab's view is not
        recomputed for every new photo (its result arrives on ``session.view_ready`` when shown)."""
        self._shown_views[key] = (kind, layer, args)
        if self.isVisible():
            self.session.request_view(key, kind, layer, **args)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        for key, (kind, layer, args) in self._shown_views.items() if self.session is not None else ():
            self.session.request_view(key, kind, layer, **args)
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            request()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().hideEvent(event)
        for key in self._shown_views if self.session is not None else ():
            self.session.drop_view(key)
