"""The window at laptop sizes: every panel reachable without sideways scrolling, no control covering another."""
import itertools

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import (
    QAbstractButton, QAbstractItemView, QAbstractScrollArea, QAbstractSlider, QAbstractSpinBox, QComboBox,
    QGraphicsView, QLabel, QLineEdit, QScrollArea, QWidget,
)

from layout_check import settle
from ui_helpers import view_of

SIZES = [(1400, 880), (1280, 720), (1024, 700)]
CONTROLS = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QGraphicsView,
            QAbstractItemView, QLabel)
TOLERANCE_PX = 2


def shown_rect(widget: QWidget) -> QRect | None:
    """The part of ``widget`` that is on screen (clipped by scroll areas), in window coordinates."""
    window = widget.window()
    rect = QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        rect = rect.intersected(QRect(parent.mapTo(window, parent.rect().topLeft()), parent.size()))
        parent = parent.parentWidget()
    return rect if not rect.isEmpty() else None


def controls(root: QWidget) -> list[tuple[QWidget, QRect]]:
    found = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, CONTROLS) or not widget.isVisible():
            continue
        if isinstance(widget, QLabel) and not widget.text().strip() and widget.pixmap().isNull():
            continue
        if isinstance(widget.parent(), (QAbstractSpinBox, QComboBox, QAbstractScrollArea)):
            continue  # a compound control's own parts
        rect = shown_rect(widget)
        if rect is not None and rect.width() > 0 and rect.height() > 0:
            found.append((widget, rect))
    return found


def overlaps(root: QWidget) -> list[str]:
    problems = []
    for (a, ra), (b, rb) in itertools.combinations(controls(root), 2):
        if a.isAncestorOf(b) or b.isAncestorOf(a):
            continue
        inter = ra.intersected(rb)
        if inter.width() > TOLERANCE_PX and inter.height() > TOLERANCE_PX:
            problems.append(f"{type(a).__name__}({a.objectName() or getattr(a, 'text', lambda: '')()!s:.30}) "
                            f"overlaps {type(b).__name__}({b.objectName() or getattr(b, 'text', lambda: '')()!s:.30})")
    return problems


def sideways_scrolling(window) -> list[str]:
    return [f"{area.widget().objectName() or type(area.widget()).__name__} scrolls sideways"
            for area in window.findChildren(QScrollArea)
            if area.isVisible() and area.horizontalScrollBar().isVisible()]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_panel_fits_without_overlaps(qtbot, ready, size):
    ready.resize(*size)
    for name in ready.panels:
        ready.set_view(name)
        qtbot.waitUntil(lambda: ready.current_panel().isVisible(), timeout=5000)
        settle()  # the layouts, and the minimum sizes they pass up
        assert not sideways_scrolling(ready), name
        assert not overlaps(ready), (name, overlaps(ready))


def test_the_real_convolution_layer_fits_at_the_smallest_size(qtbot, ready):
    ready.resize(*SIZES[-1])
    ready.set_view("convolution")
    view_of(qtbot, ready, "convolution.real", ready.conv_panel.show_real)
    settle()
    assert not sideways_scrolling(ready)
    assert not overlaps(ready), overlaps(ready)


def test_the_photo_column_shrinks_and_collapses(qtbot, ready):
    ready.resize(1400, 880)
    wide = ready.splitter.sizes()[0]
    ready.resize(1024, 700)
    narrow = ready.splitter.sizes()[0]
    assert 0 < narrow < wide
    ready.toggle_side()
    assert ready.splitter.sizes()[0] == 0
    ready.toggle_side()
    assert ready.splitter.sizes()[0] > 0
