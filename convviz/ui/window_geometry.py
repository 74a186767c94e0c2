"""Keeping a top-level window on its screen: within the available geometry (no task bars), frame included."""
from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

#: Room left for the window manager's frame (title bar, borders) while the frame is not known yet.
FRAME_ALLOWANCE = QSize(12, 40)


def available_area(window: QWidget) -> QRect:
    """The available geometry of ``window``'s screen (else the primary one); an empty QRect without a screen."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect()


def frame_margins(window: QWidget) -> QSize:
    """Width and height the frame adds to ``window`` (:data:`FRAME_ALLOWANCE` before it is known)."""
    frame, inner = window.frameGeometry(), window.geometry()
    known = QSize(frame.width() - inner.width(), frame.height() - inner.height())
    return known if known.width() > 0 or known.height() > 0 else FRAME_ALLOWANCE


def fits(window: QWidget, area: QRect | None = None) -> bool:
    """Whether ``window``, frame included, fits in ``area`` (default: its screen's available geometry)."""
    area = available_area(window) if area is None else area
    margins = frame_margins(window)
    return area.isEmpty() or (window.width() + margins.width() <= area.width()
                              and window.height() + margins.height() <= area.height())


def place_on_screen(window: QWidget, area: QRect | None = None) -> None:
    """Shrink ``window`` to ``area`` (default: its screen's available geometry) if it is larger, frame
    included, and centre it there if it is not inside."""
    area = available_area(window) if area is None else area
    if area.isEmpty():
        return
    margins = frame_margins(window)
    if not fits(window, area):
        window.resize(min(window.width(), area.width() - margins.width()),
                      min(window.height(), area.height() - margins.height()))
    frame = QRect(window.pos(), window.size() + margins)
    if not area.contains(frame):
        window.move(area.x() + (area.width() - frame.width()) // 2,
                    area.y() + (area.height() - frame.height()) // 2)
