"""The worker-side state: the live model, its layer table and the activation cache.

Only worker threads call :class:`Engine`; ``lock`` serialises them, so one forward pass
fills the cache and every view afterwards reads from it. Torch, timm and the core
modules that need them are imported inside the methods: the first model load pays for
``import torch`` in a worker thread, never the GUI at start-up.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from convviz.core.errors import first_line
from convviz.core.mosaic import channel_mosaic

from .results import ChannelStats, ModelInfo


class Engine:
    """Holds the current model and its captures; every method runs in a worker thread."""

    def __init__(self, cache_items: int = 2):
        self.lock = threading.Lock()
        self.loaded = None  #: :class:`convviz.core.models.LoadedModel` or None
        self.info: ModelInfo | None = None
        self._cache_items = cache_items
        self._cache = None
        self._forward_ms: dict[tuple, float] = {}

    @property
    def cache(self):
        """The :class:`~convviz.core.activations.ActivationCache` (created on first use)."""
        if self._cache is None:
            from convviz.core.activations import ActivationCache

            self._cache = ActivationCache(self._cache_items)
        return self._cache

    @staticmethod
    def import_torch() -> None:
        """Import the heavy libraries (the slow first step of the first model load)."""
        import timm  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401

        from convviz.core.allocator import keep_freed_memory

        keep_freed_memory()

    @staticmethod
    def build(spec: str, allow_pickle: bool = False):
        """Load the model named ``spec`` (random weights when the zoo's are not cached)."""
        from convviz.core.models import load_model

        return load_model(spec, require_weights=False, allow_pickle=allow_pickle)

    @staticmethod
    def describe(loaded) -> ModelInfo:
        """Layer table and conv layer names of a freshly built model (no forward of real data)."""
        from torch import nn

        from convviz.core.layer_table import layer_table

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
        return ModelInfo(loaded.spec, loaded.title, note, loaded.preprocess, rows, conv, int(params))

    def install(self, loaded, info: ModelInfo) -> None:
        """Make ``loaded`` the current model (caller holds ``lock``); old captures are dropped."""
        self.loaded, self.info = loaded, info
        self.cache.clear()
        self._forward_ms.clear()

    def capture(self, image_key, rgb: np.ndarray):
        """The capture of the current model on this image: one forward pass, then cached."""
        loaded = self.loaded
        key = (id(loaded.module), image_key)
        before = self.cache.computed
        started = time.perf_counter()
        capture = self.cache.get(loaded.module, image_key, lambda: loaded.preprocess.to_tensor(rgb))
        if self.cache.computed != before:
            self._forward_ms[key] = (time.perf_counter() - started) * 1000.0
        return capture, self._forward_ms.get(key, 0.0)

    def predictions(self, image_key, rgb: np.ndarray, k: int = 5) -> tuple[list[dict], float]:
        """Top-``k`` classes of the image and the forward-pass time in ms."""
        from convviz.core.activations import predict_top

        capture, ms = self.capture(image_key, rgb)
        labels = self.loaded.label_names(int(capture.logits.reshape(-1).shape[0]))
        return predict_top(capture.logits, labels, k), ms

    def activation(self, image_key, rgb: np.ndarray, name: str):
        """(mosaic, shape, stats) of layer ``name``: all channels tiled into one image."""
        capture, _ = self.capture(image_key, rgb)
        maps = capture.output_array(name)
        shape = tuple(int(n) for n in maps.shape)
        if maps.ndim == 1:
            maps = maps[:, None, None]
        if maps.ndim != 3:
            raise ValueError(f"{name}: output shape {shape} is not (channels, height, width); no mosaic")
        mosaic = channel_mosaic(maps, gap=1)
        stats = ChannelStats(
            minimum=maps.min(axis=(1, 2)), maximum=maps.max(axis=(1, 2)), mean=maps.mean(axis=(1, 2)),
            tile_hw=(int(maps.shape[1]), int(maps.shape[2])), gap=1,
        )
        return mosaic, shape, stats

    def conv_data(self, image_key, rgb: np.ndarray, name: str):
        """What the Convolution panel shows for a real Conv2d: its input, output and weights."""
        from convviz.core.conv_probe import conv_layer_data

        capture, _ = self.capture(image_key, rgb)
        module = dict(self.loaded.module.named_modules()).get(name)
        if module is None or name not in capture.inputs:
            raise ValueError(f"{name}: not a layer of this model")
        row = self.info.row(name) if self.info is not None else None
        field = dict(rf=row.rf, jump=row.jump, start=row.start) if row is not None else {}
        return conv_layer_data(module, name, capture.inputs[name], capture.outputs[name], **field)
