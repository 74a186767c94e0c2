"""What every lab widget shares: the session slot, the selected layer, requests and readiness.

A lab asks the session for its view (``session.request_view("labs.<name>", kind, layer,
**args)``); the view is computed from the cached forward pass, so changing a lab's
arguments never runs the model again. Subclasses give :attr:`NAME`, :meth:`args` and
:meth:`render`; the view kind and which layers the lab applies to are the core's
(:mod:`convviz.core.labs.names`: one home for the lab names and their rules).

A lab that is not on screen does not compute: :meth:`set_layer` on a hidden lab (or hiding
it) drops its slot, and the request is made when the lab is shown again.
"""
from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QWidget

from convviz.core.labs.names import ACTIVATION_TYPES, BATCHNORM_ACT, VIEW_KIND, act_type_of, is_map_shape, row_labs

from ..widgets.reflow import FitHeight
from ..widgets.sections import vstack

LAB_MARGIN, LAB_SPACING = 6, 4


def row_type(row, module_type: str | None) -> str:
    return module_type or (getattr(row, "type", "") if row is not None else "")


class LabWidget(QWidget):
    """Base of the four labs: ``bind``, ``set_layer``, ``applies_to``, ``is_ready``, ``unit_hovered``."""

    NAME = ""  #: ``relu`` / ``pool`` / ``dropout`` / ``pointwise`` (:data:`convviz.core.labs.names.LABS`)
    unit_hovered = Signal(object)  #: (layer, row, col) of a real unit under the mouse, or None
    ready = Signal()  #: a view was rendered
    changed = Signal()  #: ``applies_to`` answers may have changed (new model)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self.layer: str | None = None
        self.row = None
        self.module_type: str | None = None
        self.data = None
        self.error: str | None = None
        self.render_ms = 0.0  #: time of the last :meth:`render`
        self._pending = False
        self._ready = False
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setStyleSheet("color: #9a2b00;")
        self.message.setVisible(False)
        self.hover = QLabel(" ")  #: the readout of the map cell under the mouse (see hovered_cell)
        self.hover.setStyleSheet("color: #555;")
        self.fit_height = FitHeight(self)  #: never squeezed below what its text and plots need

    def lay_out(self, controls, *rest) -> None:
        """The labs' common column: title, ``controls``, the message line, then ``rest`` (see ``vstack``)."""
        vstack(self, self.title, controls, self.message, *rest, margins=LAB_MARGIN, spacing=LAB_SPACING)

    @property
    def key(self) -> str:
        return f"labs.{self.NAME}"

    @property
    def view_kind(self) -> str:
        """The core view kind of this lab (:data:`convviz.core.labs.names.VIEW_KIND`)."""
        return VIEW_KIND[self.NAME]

    # ---- the lab API ----------------------------------------------------------------
    def bind(self, session) -> None:
        """Connect to ``session`` (once)."""
        self.session = session
        session.view_ready.connect(self._on_ready)
        session.view_failed.connect(self._on_failed)
        session.views_stale.connect(self.mark_stale)
        session.model_loaded.connect(lambda _info: self.changed.emit())

    def set_layer(self, name: str, row, module_type: str | None = None) -> None:
        """The Layers panel selected ``name`` (its LayerRow ``row``, module type name)."""
        self.layer, self.row, self.module_type = name, row, row_type(row, module_type)
        self._ready = False
        if not self.applies_to(row, self.module_type):
            self._pending = False
            if self.session is not None:
                self.session.drop_view(self.key)
            self.show_message(f"{name}: {self.not_applicable()}")
            return
        self.request()

    def applies_to(self, row, module_type: str | None = None) -> bool:
        """Whether this lab has something to show for ``row`` (a LayerRow): the core's rule
        (:func:`convviz.core.labs.names.row_labs`), with a fused BatchNormAct2d's act from the model's rows."""
        if row is None:
            return False
        type_name = row_type(row, module_type)
        act = self.activation_child(row.name) if type_name == BATCHNORM_ACT else None
        return self.NAME in row_labs(row, type_name, act)

    def is_ready(self) -> bool:
        """True once the current layer's view is shown (or its one-line failure)."""
        return self._ready

    def mark_stale(self) -> None:
        """The image or model changed: say so until the new view arrives."""
        if self.data is not None:
            self.set_status("updating…")
        self.unit_hovered.emit(None)

    # ---- requests -------------------------------------------------------------------
    def request(self) -> None:
        """Ask for the view of the current layer with the current arguments."""
        if self.session is None or self.layer is None or not self.applies_to(self.row, self.module_type):
            return
        if not self.isVisible():
            self.session.drop_view(self.key)
            self._pending = True
            return
        self._pending = False
        self.set_status("computing…")
        self.session.request_view(self.key, self.view_kind, self.layer, **self.args())

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if self._pending:
            self.request()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """A lab taken off screen stops following image changes; it asks again when shown."""
        super().hideEvent(event)
        if self.session is not None and self.session.subscription(self.key) is not None:
            self.session.drop_view(self.key)
            self._pending = True

    def _on_ready(self, key: str, data) -> None:
        if key != self.key:
            return
        self.data, self.error = data, None
        self.message.setVisible(False)
        started = time.perf_counter()
        self.render(data)
        self.render_ms = (time.perf_counter() - started) * 1000.0
        self.set_status("")
        self._ready = True
        self.ready.emit()

    def _on_failed(self, key: str, message: str) -> None:
        if key != self.key:
            return
        self.show_message(message)

    def show_message(self, text: str) -> None:
        self.error = text
        self.message.setText(text)
        self.message.setVisible(True)
        self.set_status("")
        self._ready = True
        self.ready.emit()

    def hovered_cell(self, found):
        """``found`` = (map name, row, col) while there is data to read; else clears the readout → None."""
        if found is None or self.data is None:
            self.hover.setText(" ")
            self.hover_unit(None)
            return None
        return found

    def hover_unit(self, rc) -> None:
        """Emit ``unit_hovered`` for a map of the layer's own output units (``rc`` = (row, col) or None)."""
        spatial = self.row is not None and is_map_shape(getattr(self.row, "out_shape", None))
        unit = None if rc is None or self.layer is None or not spatial else (self.layer, int(rc[0]), int(rc[1]))
        self.unit_hovered.emit(unit)

    # ---- for subclasses --------------------------------------------------------------
    def args(self) -> dict:
        return {}

    def not_applicable(self) -> str:
        return "this lab does not apply to this layer"

    def render(self, data) -> None:
        raise NotImplementedError

    def set_status(self, text: str) -> None:
        """Show a short state ("computing…", "updating…") beside the title."""

    def activation_child(self, name: str) -> str | None:
        """Type of ``name.act`` in the loaded model's rows (a fused BatchNormAct2d's activation)."""
        info = getattr(self.session, "model_info", None)
        return None if info is None else act_type_of(info.rows, name)


__all__ = ["LabWidget", "ACTIVATION_TYPES", "is_map_shape", "row_type"]
