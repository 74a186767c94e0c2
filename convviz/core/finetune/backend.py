"""Feature backends: the frozen backbone as (N, 3, S, S) normalised float → (N, D) features.

One interface, :class:`FeatureBackend`, two implementations, chosen in one place
(:func:`choose_backend`):

* :class:`TorchBackend` — eager torch, ``channels_last``: the reference; any model, any device.
* :class:`OnnxBackend` — ONNX Runtime on the CPU, 1.3–5× faster per image than eager torch
  (``tests/bench/bench_finetune.py``). Its graph is the package's weight-less graph of the bundled
  architecture filled with the model's own weights (:mod:`.bundled_graph`: no export, no timm), or
  else the model exported once by ``torch.onnx`` (:mod:`.onnx_backbone`) and cached on disk. It is
  opened on first use (a run whose features are all in the feature cache opens nothing), checked
  against eager torch on a probe (max abs difference ≤ 1e-4); should it not open or differ, the
  backend runs :class:`TorchBackend` instead, and its ``kind`` says so.

A traced, frozen TorchScript graph was the third option; measured at 224 px, batch 32, 2 threads
(best of 7, interleaved) it was slower than eager ``channels_last`` torch on every model tried, ms an
image: resnet18 25.5 vs 20.7, EfficientNet-B0 17.8 vs 16.4, MobileNetV3-S 2.1 vs 2.0, tapped
Lite0 47 vs 42 (ONNX Runtime: 16.4, 7.1, 1.3, 5.9); and a cached TorchScript file is code. Removed.

Cached graphs live under ``<cache root>/graphs`` (mode 0700), keyed by architecture, what the
network computes (:func:`weights_hash`), input size and library versions.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from . import onnx_backbone
from .bundled_graph import ARCHS, GRAPH_SIZES, SOURCE, load_bundled
from .feature_cache import cache_root
from .network import Network

#: bump when what a cached graph or feature computes changes for the same weights (v2: timm's
#: ``tf_`` Lite networks, TF "SAME" padding, replaced ``efficientnet_lite0`` as the bundled model;
#: v3: tapped stages pooled as mean + log std by default)
CACHE_VERSION = 3
GRAPH_MODES = ("auto", "cached", "eager")


class FeatureBackend(Protocol):
    """Callable normalised (N, 3, S, S) float on ``device`` → (N, D) float features."""

    kind: str  #: what runs: ``"onnx"`` (ONNX Runtime) or ``"eager"`` (torch)
    device: str
    cache_key: str  #: what the features are (the feature cache's key)

    def open(self) -> str:
        """Make it ready now (load, check, export if it may); returns :attr:`kind`."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    """Eager torch on a headless copy of the model (``channels_last``)."""

    kind = "eager"

    def __init__(self, module: nn.Module, device: str = "cpu", cache_key: str = ""):
        self.module = module.to(device).eval().to(memory_format=torch.channels_last)
        self.device, self.cache_key = device, cache_key

    def open(self) -> str:
        return self.kind

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.contiguous(memory_format=torch.channels_last))


class OnnxBackend:
    """ONNX Runtime on a checked graph, opened on first use; ``fallback()`` when it does not open."""

    device = "cpu"

    def __init__(self, load: Callable[[], onnx_backbone.OnnxRunner | None], fallback: Callable[[], TorchBackend],
                 cache_key: str = ""):
        self.kind, self.cache_key = "onnx", cache_key
        self._load, self._fallback, self._run = load, fallback, None

    def open(self) -> str:
        if self._run is None:
            self._run = self._load()
            if self._run is None:
                self._run, self.kind = self._fallback(), "eager"
        return self.kind

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.open()
        return self._run(x)


def choose_backend(network: Network, *, device: str = "cpu", graph: str = "auto",
                   on_status: Callable[[str], None] | None = None) -> FeatureBackend:
    """The backend for ``network``'s features. ``graph``: ``"auto"`` exports the model to ONNX when no
    graph is cached (a one-time cost), ``"cached"`` uses an exported graph only if one is already
    there (e.g. prepared by a background job), ``"eager"`` is always torch. The shipped graph needs
    no export, so the bundled architecture at its size runs ONNX Runtime in both other modes."""
    if graph not in GRAPH_MODES:
        raise ValueError(f"graph must be auto, cached or eager, not {graph!r}")
    size = network.preprocess.input_size
    # a built model's headless copy; a state-only network is built only if torch has to run it
    eager = network.headless() if network.model is not None else None
    state = eager.state_dict() if eager is not None else network.backbone_state()
    digest = state_hash(state, repr(eager) if eager is not None else SOURCE)  # the weights and what runs them
    key = f"{digest}|taps{network.taps}|{network.pool}"

    def torch_backend() -> TorchBackend:
        return TorchBackend(eager if eager is not None else network.headless(), device, key)

    if device != "cpu" or graph == "eager" or not onnx_backbone.available():
        return torch_backend()
    if network.graph_name in ARCHS and size in GRAPH_SIZES:  # the shipped topology with this model's weights
        filled = os.path.join(cache_dir(), f"bundled-{digest}-{size}.onnx")
        return OnnxBackend(lambda: load_bundled(state, size, reference=eager, filled=filled), torch_backend, key)
    if eager is None:  # what is exported (torch_backend sees it too); a built model's digest is its weights_hash
        eager = network.headless()
        digest = weights_hash(eager)
    path = onnx_backbone.onnx_path(cache_dir(), network.graph_name, digest, size)
    if graph == "cached" and not os.path.isfile(path):
        return torch_backend()
    return OnnxBackend(lambda: onnx_backbone.load_or_export(eager, size, path, export=graph == "auto",
                                                            on_status=on_status), torch_backend, key)


def cache_dir() -> str:
    """Where graphs are cached: ``<cache_root()>/graphs``."""
    return os.path.join(cache_root(), "graphs")


def weights_hash(model: nn.Module) -> str:
    """Key of what ``model`` computes: its layers (their classes and settings: padding rules differ
    between networks with the same weights), its weights and :data:`CACHE_VERSION`."""
    return state_hash(model.state_dict(), repr(model))


def state_hash(state: dict[str, torch.Tensor], network: str) -> str:
    """Key of a state dict run by the network ``network`` describes (with :data:`CACHE_VERSION`)."""
    digest = hashlib.sha256(f"{CACHE_VERSION}|{network}".encode())
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]
