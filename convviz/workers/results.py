"""Plain data that crosses from the worker threads to the GUI, and request tickets.

Nothing here holds a tensor or a widget: numpy arrays, tuples, strings and frozen
dataclasses only. A :class:`Ticket` marks a request; :class:`Generations` knows the
newest ticket of each kind, so a stale result can be recognised on either thread.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from convviz.core.model.preprocess import Preprocess


@dataclass(frozen=True)
class ModelInfo:
    """What the views need to know about the current model (no module, no weights)."""

    spec: str
    title: str
    note: str
    preprocess: Preprocess
    rows: tuple = ()  #: :class:`convviz.core.capture.layer_table.LayerRow` per module call
    conv_layers: tuple[str, ...] = ()
    params: int = 0
    device: str = "cpu"
    head: str = ""  #: how a fine-tuned head reads the network and predicts (``LoadedModel.head_note``)

    def row(self, name: str):
        """The layer-table row called ``name`` (None if absent)."""
        return next((r for r in self.rows if r.name == name), None)


@dataclass(frozen=True)
class Ticket:
    """One request: its kind (``model``, ``image``, ``forward`` …) and generation number."""

    kind: str
    number: int


@dataclass
class Generations:
    """Newest generation per request kind; read from worker threads, written on the GUI thread."""

    _latest: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next(self, kind: str) -> Ticket:
        """A new ticket of ``kind``; every older ticket of that kind becomes stale."""
        with self._lock:
            self._latest[kind] = self._latest.get(kind, 0) + 1
            return Ticket(kind, self._latest[kind])

    def is_current(self, ticket: Ticket) -> bool:
        """True while no newer request of the same kind was made and the session is open."""
        return not self.closed and self._latest.get(ticket.kind) == ticket.number
