"""The worker-side state: the live model, its layer table and the activation cache.

Only worker threads call :class:`Engine`; ``lock`` serialises them, so one forward pass
fills the cache and every view afterwards reads from it. Torch, timm and the core
modules that need them are imported inside the methods: the first model load pays for
``import torch`` in a worker thread, never the GUI at start-up.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import replace

import numpy as np

from convviz.core.capture.allocator import keep_freed_memory
from convviz.core.errors import first_line
from convviz.core.views.registry import ViewContext, get_view
from .capture_thread import run_on_capture_thread
from .results import ModelInfo


class Engine:
    """Holds the current model and its captures; every method runs in a worker thread."""

    def __init__(self, cache_items: int = 2):
        self.lock = threading.Lock()
        self.loaded = None  #: :class:`convviz.core.model.loading.LoadedModel` or None
        self.info: ModelInfo | None = None
        self._cache_items = cache_items
        self._cache = None
        self._forward_ms: dict[tuple, float] = {}
        self._modules: dict | None = None
        self.trusted = False  #: the current model was loaded with the explicit code opt-in

    @property
    def cache(self):
        """The :class:`~convviz.core.capture.cache.ActivationCache` (created on first use)."""
        if self._cache is None:
            from convviz.core.capture.cache import ActivationCache

            self._cache = ActivationCache(self._cache_items)
        return self._cache

    @staticmethod
    def import_torch() -> None:
        """Import the heavy libraries (the slow first step of the first model load)."""
        import timm  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401

        keep_freed_memory()

    @staticmethod
    def build(spec: str, allow_pickle: bool = False):
        """Load the model named ``spec`` (random weights when the zoo's are not cached)."""
        from convviz.core.model.loading import load_model

        return load_model(spec, require_weights=False, allow_pickle=allow_pickle)

    @staticmethod
    def describe(loaded) -> ModelInfo:
        """Layer table and conv layer names of a freshly built model (no forward of real data)."""
        from torch import nn

        from convviz.core.capture.layer_table import layer_table

        note = loaded.note
        size = loaded.preprocess.input_size
        try:
            rows = tuple(layer_table(loaded.module, (3, size, size)))
        except Exception as exc:  # e.g. TorchScript modules take no hooks
            rows = ()
            note = "; ".join(filter(None, [note, f"no layer table ({first_line(exc)})"]))
        modules = dict(loaded.module.named_modules())
        conv = tuple(r.name for r in rows if isinstance(modules.get(r.name), nn.Conv2d))
        params = sum(p.numel() for p in loaded.module.parameters())
        return ModelInfo(loaded.spec, loaded.title, note, loaded.preprocess, rows, conv, int(params), head=loaded.head_note)

    def install(self, loaded, info: ModelInfo, trusted: bool = False) -> None:
        """Make ``loaded`` the current model (caller holds ``lock``); old captures are dropped."""
        self.loaded, self.info, self.trusted = loaded, info, trusted
        self._modules = None
        self.cache.clear()
        self._forward_ms.clear()

    def capture(self, image_key, rgb: np.ndarray):
        """The capture of the current model on this image: one forward pass, then cached.

        The pass runs on the capture thread (:mod:`.capture_thread`): every capture's memory comes
        from, and goes back to, one allocator pool, so a new image never waits for fresh pages. A
        capture already cached is returned here, without a trip to that thread.
        """
        loaded = self.loaded
        key = (id(loaded.module), image_key)
        cache = self.cache
        layers = () if loaded.scripted else None  # TorchScript takes no hooks: the logits only
        capture = cache.cached(loaded.module, image_key, layers=layers)
        if capture is not None:
            return capture, self._forward_ms.get(key, 0.0)
        before = cache.computed
        started = time.perf_counter()
        capture = run_on_capture_thread(
            lambda: cache.get(loaded.module, image_key, lambda: loaded.preprocess.to_tensor(rgb), layers=layers))
        if cache.computed != before:
            self._forward_ms[key] = (time.perf_counter() - started) * 1000.0
        return capture, self._forward_ms.get(key, 0.0)

    def view(self, kind: str, layer: str | None, args: dict, image_key, rgb: np.ndarray):
        """The frozen result of core view ``kind`` for ``layer`` of the current model on this image."""
        function = get_view(kind)
        if layer is not None and self.loaded.scripted:
            raise ValueError(f"{layer}: a TorchScript model takes no hooks, so its layers cannot be shown "
                             "(predictions work; load its weights as ARCH=FILE to see inside)")
        capture, ms = self.capture(image_key, rgb)
        module = row = None
        if layer is not None:
            base = layer.split(":")[0]
            module = self.modules.get(base)
            row = self.info.row(layer) if self.info is not None else None
        preprocess = self.loaded.preprocess
        ctx = ViewContext(capture=capture, model=self.loaded, layer=layer, module=module, row=row, forward_ms=ms,
                          make_input=lambda: preprocess.to_tensor(rgb))
        return function(ctx, **args)

    @property
    def modules(self) -> dict:
        """``named_modules()`` of the current model, by path."""
        if self._modules is None and self.loaded is not None:
            self._modules = dict(self.loaded.module.named_modules())
        return self._modules or {}

    @property
    def forward_passes(self) -> int:
        """How many forward passes filled the activation cache so far."""
        return self._cache.computed if self._cache is not None else 0

    def model_copy(self):
        """A private copy of the current model for long work that may change it (training).

        The one way to get a copy: a deep copy made under :attr:`lock` (tens of milliseconds), so
        the views keep the live model and never read weights that change.
        """
        with self.lock:
            loaded = self.loaded
            if loaded is None:
                raise ValueError("no model is loaded")
            return replace(loaded, module=copy.deepcopy(loaded.module))

