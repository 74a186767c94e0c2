"""Tabs under the mosaic: the chosen channel, then one tab per *lab* that teaches a layer's stage.

A lab is any QWidget with

- ``set_layer(name: str, row) -> None``: called whenever the selected layer changes
  (``row`` is its :class:`~convviz.core.capture.layer_table.LayerRow`, None if unknown);
- ``applies_to(row) -> bool``: whether it has something to show for that layer (its tab
  is disabled otherwise);

and optionally ``bind(session)`` (called once, when the panel is bound), a ``unit_hovered``
signal (forwarded to the photo's receptive-field box), ``is_ready() -> bool`` (the
screenshot waits for it while the lab is shown), ``mark_stale()`` and a ``changed`` signal
(emit it when ``applies_to`` answers may have changed).

Only the tab on show counts for the host's minimum size: a tall lab does not squeeze the
mosaic while the channel tab is shown.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QSizePolicy, QTabWidget, QWidget

from ..widgets.reflow import FitHeight

IGNORED = QSizePolicy.Policy.Ignored


class LabHost(QTabWidget):
    """A QTabWidget whose fixed tabs come first and whose labs follow the selected layer."""

    unit_hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDocumentMode(True)
        self._labs: dict[str, QWidget] = {}
        self._disabled: set[str] = set()  #: fixed tabs switched off for the current layer
        self._names: dict[QWidget, str] = {}
        self.session = None
        self.layer: tuple[str, object] | None = None
        self._policies: dict[QWidget, QSizePolicy] = {}
        self.currentChanged.connect(self._size_by_current)

    def addTab(self, widget: QWidget, title: str) -> int:  # noqa: N802 (Qt name)
        self._policies[widget] = widget.sizePolicy()
        if getattr(widget, "fit_height", None) is None:  # labs keep their own
            widget.fit_height = FitHeight(widget)
        index = super().addTab(widget, title)
        self._size_by_current(self.currentIndex())
        return index

    def _size_by_current(self, index: int) -> None:
        """The shown page keeps its size policy; the others are ignored for the host's size."""
        for i in range(self.count()):
            widget = self.widget(i)
            policy = self._policies.get(widget, widget.sizePolicy())
            widget.setSizePolicy(policy if i == index else QSizePolicy(IGNORED, IGNORED))
        self.updateGeometry()

    def add_fixed(self, name: str, title: str, widget: QWidget) -> None:
        """A tab that is always available (the channel view)."""
        self._names[widget] = name
        self.addTab(widget, title)

    def set_fixed_enabled(self, name: str, enabled: bool) -> None:
        """Switch a fixed tab on or off for the current layer (the channel tab for a vector)."""
        (self._disabled.discard if enabled else self._disabled.add)(name)
        self.refresh()

    def add_lab(self, name: str, title: str, widget: QWidget) -> None:
        """Add lab ``name`` (e.g. ``relu``) with tab ``title``; it follows the selected layer from now on."""
        if name in self._labs or name in self._names.values():
            raise ValueError(f"a tab named {name!r} exists already")
        self._labs[name] = widget
        self._names[widget] = name
        self.addTab(widget, title)
        if hasattr(widget, "unit_hovered"):
            widget.unit_hovered.connect(self.unit_hovered)
        if hasattr(widget, "changed"):
            widget.changed.connect(self.refresh)
        if self.session is not None and hasattr(widget, "bind"):
            widget.bind(self.session)
        if self.layer is not None:
            widget.set_layer(*self.layer)
        self.refresh()

    def bind(self, session) -> None:
        self.session = session
        for widget in self._labs.values():
            if hasattr(widget, "bind"):
                widget.bind(session)

    def lab(self, name: str) -> QWidget | None:
        return self._labs.get(name)

    def lab_names(self) -> list[str]:
        return list(self._labs)

    def tab_name(self, index: int | None = None) -> str | None:
        widget = self.widget(self.currentIndex() if index is None else index)
        return self._names.get(widget)

    def set_layer(self, name: str, row) -> None:
        """Tell every lab the selected layer; disable the tabs of labs that do not apply to it."""
        self.layer = (name, row)
        for widget in self._labs.values():
            widget.set_layer(name, row)
        self.refresh()

    def applies(self, name: str) -> bool:
        widget = self._labs.get(name)
        if widget is None:
            return name in self._names.values() and name not in self._disabled
        return self.layer is not None and bool(widget.applies_to(self.layer[1]))

    def refresh(self) -> None:
        """Enable exactly the tabs that apply (a disabled current tab gives way); hide when none does."""
        shown = self.currentIndex()  # Qt moves off a tab as it is disabled: decide from the one shown before
        for widget, name in self._names.items():
            self.setTabEnabled(self.indexOf(widget), self.applies(name))
        if not self.isTabEnabled(shown):
            enabled = [i for i in range(self.count()) if self.isTabEnabled(i)]
            self.setCurrentIndex(enabled[0] if enabled else 0)
        elif self.currentIndex() != shown:
            self.setCurrentIndex(shown)
        self.setVisible(any(self.isTabEnabled(i) for i in range(self.count())))

    def select(self, name: str) -> bool:
        """Show tab ``name`` if it exists and applies to the selected layer."""
        widget = next((w for w, n in self._names.items() if n == name), None)
        if widget is None or not self.applies(name):
            return False
        self.setCurrentWidget(widget)
        return True

    def current_ready(self) -> bool:
        """False only while the lab on show (visible, applicable) still waits for its data."""
        widget = self.currentWidget()
        if widget not in self._labs.values() or not hasattr(widget, "is_ready"):
            return True
        if not widget.isVisible() or not self.isTabEnabled(self.currentIndex()):
            return True  # a hidden lab computes nothing until it is shown; a disabled one never will
        return widget.is_ready()

    def mark_stale(self) -> None:
        for widget in self._labs.values():
            if hasattr(widget, "mark_stale"):
                widget.mark_stale()
