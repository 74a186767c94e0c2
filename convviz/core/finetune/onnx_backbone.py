"""The frozen backbone as an ONNX Runtime session: exported once, cached on disk, checked against torch.

``torch.onnx.export(..., dynamo=True)`` turns the headless model into an ONNX graph with a
dynamic batch axis; ONNX Runtime runs it about 1.5–3× faster than eager ``channels_last`` torch
on 2 CPU cores (see ``tests/bench/bench_finetune.py``). The legacy (TorchScript-based) exporter
produced wrong features for this model, so a graph is *never* trusted blindly: every load
compares it with eager torch on a seeded probe batch (max abs difference ≤ ``TOLERANCE``) and
an unreadable, stale or mismatching file is ignored (the caller falls back to eager torch).

The cache key is (architecture, weights hash, input size, torch / onnx / onnxscript /
onnxruntime versions). Files live in a per-user folder created with mode 0700 and are written
atomically; they are our own cache, but ONNX files are still parsed by ONNX Runtime, so never
point ``CONVVIZ_CACHE_DIR`` at a folder others can write.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import importlib.util
import io
import logging
import os
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write

TOLERANCE = 1e-4
_PACKAGES = ("torch", "onnx", "onnxscript", "onnxruntime")


def available() -> bool:
    """True when onnxruntime, onnx and onnxscript are installed (found, not imported: onnxscript
    alone takes ~0.5 s to import and is only needed for the one-time export)."""
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES)


def versions() -> str:
    out = []
    for name in _PACKAGES:
        try:
            out.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name}=none")
    return ",".join(out)


def onnx_path(folder: str, arch: str, weights: str, input_size: int) -> str:
    """Cache file for (arch, weights hash, input size, library versions) inside ``folder``."""
    key = f"{arch}|{weights}|{input_size}|{versions()}"
    safe = "".join(c if c.isalnum() else "_" for c in arch)[:40]
    return os.path.join(folder, f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx")


def export_program(module: nn.Module, input_size: int, optimize: bool = True):
    """``module`` (eval, (N,3,S,S) → (N,D)) as an ONNX ``ModelProto`` from the dynamo exporter, batch axis dynamic."""
    example = torch.randn(2, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_stdout():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=["x"], output_names=["features"],
                                        dynamic_shapes=({0: batch},), optimize=optimize, verbose=False)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return program.model_proto


def export_onnx(backbone: nn.Module, input_size: int, path: str) -> str:
    """Export ``backbone`` (eval, (N,3,S,S) → (N,D)) with the dynamo exporter; atomic write at ``path``."""
    import onnx

    module = _Contiguous(copy.deepcopy(backbone).to(memory_format=torch.contiguous_format)).eval()
    buffer = io.BytesIO()
    onnx.save_model(export_program(module, input_size), buffer)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return path


def new_session(model: str | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session on a file path or serialized model, all graph optimizations on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle pool threads sleep instead of spinning: spinning kept both cores busy between batches,
    # starving the GUI thread, for no gain on whole batches (6.4 ms/img either way, measured)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """Callable float32 (N,3,S,S) torch tensor → (N,D) torch tensor through an ONNX Runtime session."""

    def __init__(self, session):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().contiguous().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


def probe(input_size: int) -> torch.Tensor:
    """The seeded batch every prepared graph is checked on (and the bundled graph's stored features belong to)."""
    return torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def eager_features(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What eager torch gives for ``x`` (channels_last, as :class:`~.backend.TorchBackend` runs it)."""
    return backbone(x.contiguous(memory_format=torch.channels_last)).float()


def agrees(runner, want: torch.Tensor, input_size: int) -> bool:
    """True when ``runner``'s features of :func:`probe` equal ``want`` within :data:`TOLERANCE`."""
    got = runner(probe(input_size))
    return got.shape == want.shape and torch.allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE)


def load_onnx(path: str, backbone: nn.Module, input_size: int, threads: int | None = None) -> OnnxRunner | None:
    """The session for ``path`` if the file exists, loads and matches eager ``backbone`` on
    :func:`probe` within :data:`TOLERANCE`; else None (never raises)."""
    if not os.path.isfile(path):
        return None
    try:
        runner = OnnxRunner(new_session(path, threads))
        if not agrees(runner, eager_features(backbone, probe(input_size)), input_size):
            return None
    except Exception:  # damaged, truncated or foreign file: eager torch is the fallback
        return None
    return runner


def load_or_export(backbone: nn.Module, input_size: int, path: str, *, export: bool,
                   on_status: Callable[[str], None] | None = None) -> OnnxRunner | None:
    """:func:`load_onnx` of ``path``; when that fails and ``export``, export ``backbone`` there first
    (once per machine, model and size). None when neither gives a checked graph (never raises)."""
    runner = load_onnx(path, backbone, input_size)
    if runner is None and export:
        say = on_status or (lambda message: None)
        say(f"exporting the backbone to ONNX once; later runs reuse it ({os.path.dirname(path)})")
        try:
            runner = load_onnx(export_onnx(backbone, input_size, path), backbone, input_size)
        except Exception as exc:  # the exporter can fail on exotic models: eager torch still works
            say(f"ONNX export failed ({type(exc).__name__}); using eager torch")
    return runner


class _Contiguous(nn.Module):
    """Runs the wrapped backbone in the default memory format (what the exporter expects)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class _quiet_stdout:
    """The dynamo exporter prints progress lines to stdout; keep the CLI's ``--json`` line clean."""

    def __enter__(self):
        self._redirect = contextlib.redirect_stdout(io.StringIO())
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc):
        return self._redirect.__exit__(*exc)
