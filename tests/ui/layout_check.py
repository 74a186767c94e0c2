"""Geometry checks of a laid-out window, scrolled-away parts included (imported as ``layout_check``).

Rectangles are mapped to the window (the common ancestor), so a widget scrolled out of its
scroll area's viewport is still compared; a widget is clipped by its ancestors only below the
first scroll-area viewport (a viewport clips what it scrolls away, which is what we still check).
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractScrollArea, QApplication, QGraphicsView, QGroupBox, QLabel, QWidget,
)

from convviz.ui.widgets.grid_canvas import GridCanvas

TOLERANCE_PX = 2
PLOTS = (QGraphicsView, GridCanvas)  #: pyqtgraph GraphicsView / PlotWidget / GraphicsLayoutWidget, canvases
TEXTS = (QLabel, QAbstractButton, QGroupBox)


def settle(rounds: int = 6) -> None:
    """Let posted layout requests run, and those their resizes post (a minimum height set on a page
    reaches the scroll area over several levels)."""
    for _ in range(rounds):
        QApplication.processEvents()


def _is_viewport(widget: QWidget) -> bool:
    parent = widget.parentWidget()
    return isinstance(parent, QAbstractScrollArea) and parent.viewport() is widget


def viewport_of(widget: QWidget) -> QWidget | None:
    """The innermost scroll-area viewport holding ``widget`` (None: not in a scroll area)."""
    parent = widget.parentWidget()
    while parent is not None and not _is_viewport(parent):
        parent = parent.parentWidget()
    return parent


def laid_out_rect(widget: QWidget, on_screen: bool = False) -> QRect:
    """``widget`` in window coordinates, clipped by its ancestors up to its scroll-area viewport
    (``on_screen``: by every ancestor, as it is drawn)."""
    window = widget.window()
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window and (on_screen or not _is_viewport(parent)):
        rect = rect.intersected(QRect(parent.mapTo(window, QPoint(0, 0)), parent.size()))
        parent = parent.parentWidget()
    return rect


def _shown(widget: QWidget, window: QWidget) -> bool:
    return widget.isVisibleTo(window) and widget.width() > 0 and widget.height() > 0


def _has_text(widget: QWidget) -> bool:
    if isinstance(widget, QLabel):
        return bool(widget.text().strip()) or not widget.pixmap().isNull()
    if isinstance(widget, QGroupBox):
        return bool(widget.title().strip())
    return bool(widget.text().strip())


def _name(widget: QWidget) -> str:
    text = widget.title() if isinstance(widget, QGroupBox) else getattr(widget, "text", lambda: "")()
    text = " ".join(str(text).split())
    return f"{type(widget).__name__}({widget.objectName() or text[:48]!r})"


def text_widgets(window: QWidget) -> list[QWidget]:
    return [w for w in window.findChildren(QWidget)
            if isinstance(w, TEXTS) and not isinstance(w.parentWidget(), QAbstractScrollArea) and _shown(w, window)
            and _has_text(w)]


def plot_widgets(window: QWidget) -> list[QWidget]:
    return [w for w in window.findChildren(QWidget) if isinstance(w, PLOTS) and _shown(w, window)]


def text_over_plots(window: QWidget) -> list[str]:
    """Each visible text widget that intersects a plot that is not its ancestor or descendant."""
    plots = [(p, viewport_of(p)) for p in plot_widgets(window)]
    problems = []
    for text in text_widgets(window):
        scroller = viewport_of(text)
        for plot, plot_scroller in plots:
            if plot.isAncestorOf(text) or text.isAncestorOf(plot):
                continue
            # in the same scrolled content: as laid out; else as drawn (a viewport clips the other)
            on_screen = plot_scroller is not scroller
            rect, prect = laid_out_rect(text, on_screen), laid_out_rect(plot, on_screen)
            inter = rect.intersected(prect)
            if inter.width() > TOLERANCE_PX and inter.height() > TOLERANCE_PX:
                problems.append(f"{_name(text)} {rect.getRect()} over {type(plot).__name__} {prect.getRect()}")
    return problems


def short_labels(window: QWidget) -> list[str]:
    """Word-wrapped labels shorter than their text needs at their width (heightForWidth)."""
    problems = []
    for label in text_widgets(window):
        if not isinstance(label, QLabel) or not label.wordWrap() or not label.text().strip():
            continue
        need = label.heightForWidth(label.width())
        if need > label.height() + TOLERANCE_PX:
            problems.append(f"{_name(label)} is {label.width()}×{label.height()}, its text needs {need} px")
    return problems


def cut_off(window: QWidget) -> list[str]:
    """Text widgets that an ancestor (a splitter pane, a tab page) clips: part of their text is never drawn."""
    problems = []
    for widget in text_widgets(window):
        rect = laid_out_rect(widget)
        if rect.height() < widget.height() - TOLERANCE_PX or rect.width() < widget.width() - TOLERANCE_PX:
            problems.append(f"{_name(widget)} {widget.width()}×{widget.height()} is clipped to "
                            f"{rect.width()}×{rect.height()} by its container")
    return problems


def checked_count(window: QWidget) -> tuple[int, int]:
    """(text widgets, plot widgets) the checks looked at."""
    return len(text_widgets(window)), len(plot_widgets(window))
