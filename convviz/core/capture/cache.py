"""Recent captures keyed by (model, image, layers, mode): compute once, view many times."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

from torch import nn

from .activations import Capture, Capturer


class ActivationCache:
    """Captures keyed by (model, image, layers, train); newest kept, oldest evicted (before a new pass,
    so at most ``max_items`` captures are ever held).

    Compute once, view many: a capture of every layer also answers any request for a
    subset of them. Capturers are kept per (model, layers, train) so what they learned
    (aliases, names to clone) is reused.
    """

    def __init__(self, max_items: int = 2, max_capturers: int = 8):
        self.max_items = max_items
        self.max_capturers = max_capturers
        self._items: OrderedDict[tuple, Capture] = OrderedDict()
        self._capturers: OrderedDict[tuple, Capturer] = OrderedDict()
        self.computed = 0  #: forward passes run (cache misses)

    def get(self, model: nn.Module, image_key, make_input, layers: Iterable[str] | None = None,
            train: bool = False) -> Capture:
        """The capture of (model, image_key); ``make_input()`` (a batch) is called only on a miss."""
        chosen = None if layers is None else frozenset((layers,) if isinstance(layers, str) else layers)
        train = bool(train)
        key = self._key(model, image_key, chosen, train)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        capturer = self._capturer(model, chosen, train)
        x = make_input()
        self._trim(self.max_items - 1)  # before the pass: the new capture reuses the memory the oldest gave back
        capture = capturer(x)
        self.computed += 1
        self._items[key] = capture
        self._trim(self.max_items)
        return capture

    def cached(self, model: nn.Module, image_key, layers: Iterable[str] | None = None,
               train: bool = False) -> Capture | None:
        """The capture :meth:`get` would return without a pass, or None (nothing computed)."""
        chosen = None if layers is None else frozenset((layers,) if isinstance(layers, str) else layers)
        key = self._key(model, image_key, chosen, bool(train))
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def _key(self, model: nn.Module, image_key, chosen: frozenset | None, train: bool) -> tuple:
        key = (id(model), image_key, chosen, train)
        full = (id(model), image_key, None, train)
        if key not in self._items and full in self._items and chosen <= self._items[full].outputs.keys():
            return full  # every layer was captured already: it holds the ones asked for
        return key

    def _trim(self, size: int) -> None:
        while len(self._items) > max(size, 0):
            self._items.popitem(last=False)

    def _capturer(self, model: nn.Module, chosen: frozenset | None, train: bool) -> Capturer:
        key = (id(model), chosen, train)
        capturer = self._capturers.get(key)
        if capturer is None or capturer.model is not model:
            capturer = self._capturers[key] = Capturer(model, None if chosen is None else sorted(chosen), train)
        self._capturers.move_to_end(key)
        while len(self._capturers) > self.max_capturers:
            self._capturers.popitem(last=False)[1].close()
        return capturer

    def clear(self) -> None:
        """Forget all captures and capturers."""
        self._items.clear()
        for capturer in self._capturers.values():
            capturer.close()
        self._capturers.clear()
