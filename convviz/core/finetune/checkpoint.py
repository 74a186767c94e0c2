"""Atomic writes and the convviz checkpoint (``torch.load(weights_only=True)``-loadable).

A file is written to a temp file in the same folder, fsynced, renamed over the target and the
folder fsynced: a crash or kill mid-save leaves the previous file intact.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import torch
from torch import nn

from ..model_files import CHECKPOINT_FORMAT, ModelError
from ..preprocess import Preprocess


def atomic_write(path: str, write: Callable[[object], None]) -> None:
    """Call ``write(binary_file)`` on a temp file beside ``path``, then replace ``path`` atomically."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ModelError(f"cannot write {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise ModelError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ModelError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def checkpoint_dict(model: nn.Module | dict, *, arch: str, labels: list[str], preprocess: Preprocess, training: dict,
                    taps: tuple[int, ...] = (), mirror: bool = False) -> dict:
    """The checkpoint payload: plain types and CPU tensors only; ``model`` is a module or its state dict;
    ``taps``/``mirror``: how the head reads the network and how it predicts (see ``model_files``)."""
    state = model if isinstance(model, dict) else model.state_dict()
    return {
        "head": {"taps": [int(t) for t in taps], "mirror": bool(mirror)},
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "labels": [str(label) for label in labels],
        "preprocess": {"input_size": int(preprocess.input_size), "crop_pct": float(preprocess.crop_pct),
                       "mean": [float(v) for v in preprocess.mean], "std": [float(v) for v in preprocess.std],
                       "interpolation": str(preprocess.interpolation)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()},
        "training": _plain(training),
    }


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def save_checkpoint(path: str, payload: dict) -> None:
    """Write ``payload`` (from :func:`checkpoint_dict`) atomically."""
    atomic_write(path, lambda handle: torch.save(payload, handle))


def check_writable(path: str) -> None:
    """Raise :class:`ModelError` now (before training) if ``path`` cannot be written."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise ModelError(f"cannot write {path}: it is a folder")
    if not os.path.isdir(folder):
        raise ModelError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ModelError(f"cannot write {path}: permission denied")
