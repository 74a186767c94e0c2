"""Reading model files safely: state dicts, convviz checkpoints, and (opt-in) code.

Every ``torch.load`` uses ``weights_only=True``. Two kinds of file run code when loaded and
are refused with :class:`PickledModelError` unless the caller opts in (``allow_pickle=True``,
"trust code"): a fully pickled ``nn.Module`` and a TorchScript archive (detected by content,
whatever its name). Zip archives are checked before torch reads them: compressed entries
may not declare more than :data:`MAX_INFLATED_BYTES`. Checkpoint fields are validated by
:func:`checkpoint_fields` before anything is built; :func:`checkpoint_dict` and
:func:`save_checkpoint` write them (the one home of the checkpoint format, both ways).
"""
from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass

import torch
from torch import nn

from ..atomic import atomic_write
from ..errors import first_line
from .taps import POOLS

CHECKPOINT_FORMAT = "convviz-checkpoint-1"
#: Compressed zip entries may inflate to at most this many bytes in total (torch writes them stored).
MAX_INFLATED_BYTES = 64 * 2**20
#: Checkpoint input sizes outside this range are refused.
INPUT_SIZE_RANGE = (16, 1024)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
MAX_LABELS, MAX_LABEL_CHARS = 100_000, 200


class ModelError(ValueError):
    """A model that cannot be loaded; the message is one line for the user."""


class PickledModelError(ModelError):
    """A file that runs code when loaded (pickled objects, TorchScript), refused without the opt-in."""


def _zip_names(path: str) -> list[str] | None:
    """Entry names of a zip archive, or None when ``path`` is not one."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def is_torchscript(path: str) -> bool:
    """True for a TorchScript archive (a zip holding ``constants.pkl`` or a ``code/`` folder)."""
    names = _zip_names(path) or []
    return any(n.rsplit("/", 1)[-1] == "constants.pkl" or "code" in n.split("/")[:-1] for n in names)


def check_archive(path: str) -> None:
    """Refuse a zip whose compressed entries would inflate past :data:`MAX_INFLATED_BYTES`."""
    if not zipfile.is_zipfile(path):
        return
    name = os.path.basename(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{name}: damaged zip archive ({first_line(exc)})") from None
    inflated = sum(e.file_size for e in entries if e.compress_type != zipfile.ZIP_STORED)
    if inflated > MAX_INFLATED_BYTES:
        raise ModelError(f"{name}: refused: compressed entries would inflate to {inflated // 2**20} MB "
                         f"(limit {MAX_INFLATED_BYTES // 2**20} MB; PyTorch writes its files uncompressed)")
    size = os.path.getsize(path)
    if any(e.compress_type == zipfile.ZIP_STORED and e.file_size > size for e in entries):
        raise ModelError(f"{name}: damaged zip archive (an entry is larger than the file)")


def read_weights(path: str, allow_pickle: bool = False):
    """Load a file's tensors/dicts (or, with ``allow_pickle``, a whole pickled module)."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ModelError(f"{name}: no such file")
    if os.path.getsize(path) == 0:
        raise ModelError(f"{name}: the file is empty")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise ModelError(f"{name}: not a valid safetensors file ({first_line(exc)})") from None
    check_archive(path)
    if is_torchscript(path):
        raise ModelError(f"{name}: a TorchScript archive (code), not a weights file; open it as a model on its own")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _refusal(path, exc)
        if not allow_pickle:
            raise PickledModelError(f"{name}: refused: {reason} (open it only if you trust its source)") from None
    except MemoryError:
        raise ModelError(f"{name}: not enough memory to read this file") from None
    except Exception as exc:  # a malformed pickle can fail in any way (IndexError, KeyError …)
        raise ModelError(f"{name}: not a PyTorch checkpoint ({first_line(exc)})") from None
    warnings.warn(f"{name}: unpickling a full model; this runs code from the file", stacklevel=2)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{name}: could not unpickle ({first_line(exc)})") from None


def _refusal(path: str, exc: Exception) -> str:
    """Why the weights-only loader refused ``path``: the foreign object it names, or raise ModelError."""
    scanned = pickle_globals(_pickle_bytes(path))
    if scanned is None:
        detail = re.search(r"WeightsUnpickler error: \s*(.+)", str(exc))
        reason = detail[1].strip() if detail else first_line(exc)
        raise ModelError(f"{os.path.basename(path)}: not a PyTorch checkpoint ({reason})") from None
    foreign = [g for g in scanned if g not in _allowed_globals()]
    if foreign:
        return f"the file holds pickled Python objects ({foreign[0]}), not just weights"
    return "the file uses pickle features the weights-only loader does not accept"


def _allowed_globals() -> set[str]:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return set(_get_allowed_globals())
    except (ImportError, AttributeError):  # private API moved: treat every torch.* name as allowed
        return {"collections.OrderedDict"}


def _pickle_bytes(path: str, limit: int = 64 * 2**20) -> bytes:
    """The pickle stream of a torch file: ``data.pkl`` of a zip, else the file's start."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith("data.pkl") and info.file_size <= limit:
                    return archive.read(info)
        return b""
    with open(path, "rb") as handle:
        return handle.read(limit)


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}


def pickle_globals(data: bytes) -> list[str] | None:
    """``module.name`` of every global a pickle stream refers to (any protocol), read without
    executing it; None when ``data`` does not parse as a pickle. Best effort for memoised names."""
    found: list[str] = []
    stream, memo, recent = io.BytesIO(data), {}, []
    parsed = False
    for _ in range(4):  # legacy torch files are several pickles in a row
        if stream.tell() >= len(data):
            break
        try:
            for op, arg, _pos in pickletools.genops(stream):
                kind = op.name
                if kind in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif kind in _STRING_OPS:
                    recent.append(str(arg))
                    continue
                elif kind in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
                    recent.append(memo[arg])
                    continue
                elif kind in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
                    key = len(memo) if kind == "MEMOIZE" else arg
                    if recent:
                        memo[key] = recent[-1]
                    continue
                elif kind == "STACK_GLOBAL" and len(recent) >= 2:
                    found.append(f"{recent[-2]}.{recent[-1]}")
                recent.clear()
        except Exception:
            return found if (parsed or found) else None
        parsed = True
    return found


def unwrap_state_dict(obj, name: str) -> dict[str, torch.Tensor]:
    """Accept ``{"state_dict": …}`` / ``{"model": …}`` wrappers and ``module.`` prefixes."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if (not isinstance(obj, dict) or not obj or not all(isinstance(k, str) for k in obj)
            or not all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise ModelError(f"{name}: not a state dict (expected a mapping of parameter names to tensors)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def fit_report(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """None when ``state`` fits ``model`` strictly, else a one-line description of why not."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            shown = ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "")
            parts.append(f"{len(keys)} {label} key{'s' if len(keys) != 1 else ''} ({shown})")
    return "; ".join(parts) or None


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Fill ``model`` from ``state`` or raise :class:`ModelError` naming the mismatch."""
    problem = fit_report(model, state)
    if problem:
        raise ModelError(f"{what}: state dict does not fit the architecture: {problem}")
    model.load_state_dict(state, strict=True)
    return model


def head_classes(state: dict[str, torch.Tensor]) -> int | None:
    """Number of classes of the classifier: the last 2-D weight, else the last 1×1 conv weight, if any."""
    weights = [v for k, v in state.items() if k.endswith("weight")]
    for fits in (lambda w: w.ndim == 2, lambda w: w.ndim == 4 and tuple(w.shape[2:]) == (1, 1)):
        found = [w for w in weights if fits(w)]
        if found:
            return int(found[-1].shape[0])
    return None


def checkpoint_dict(model: nn.Module | dict, *, arch: str, labels: list[str], preprocess, training: dict,
                    taps: tuple[int, ...] = (), pool: str = "mean", mirror: bool = False) -> dict:
    """A convviz checkpoint (what :func:`checkpoint_fields` reads back): plain types and CPU tensors only.

    ``model``: a module or its state dict; ``preprocess``: a :class:`~convviz.core.model.preprocess.Preprocess`;
    ``taps``/``pool``/``mirror``: how the head reads the network and how it predicts (:class:`CheckpointFields`).
    """
    state = model if isinstance(model, dict) else model.state_dict()
    return {
        "head": {"taps": [int(t) for t in taps], "pool": str(pool), "mirror": bool(mirror)},
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "labels": [str(label) for label in labels],
        "preprocess": {"input_size": int(preprocess.input_size), "crop_pct": float(preprocess.crop_pct),
                       "mean": [float(v) for v in preprocess.mean], "std": [float(v) for v in preprocess.std],
                       "interpolation": str(preprocess.interpolation)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()},
        "training": _as_plain(training),
    }


def _as_plain(value):
    """``value`` with every leaf that is not a bool, number, string or None written as a string."""
    if isinstance(value, dict):
        return {str(k): _as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def save_checkpoint(path: str, payload: dict) -> None:
    """Write ``payload`` (from :func:`checkpoint_dict`) atomically (:func:`convviz.core.atomic.atomic_write`);
    ``torch.load(weights_only=True)`` reads it back."""
    atomic_write(path, lambda handle: torch.save(payload, handle))


def is_convviz_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


@dataclass(frozen=True)
class CheckpointFields:
    """A convviz checkpoint's fields, each checked for type and range."""

    arch: str
    labels: tuple[str, ...]
    preprocess: dict
    state_dict: dict[str, torch.Tensor]
    training: dict | None
    taps: tuple[int, ...] = ()  #: stages a multi-layer head reads (:mod:`.taps`)
    pool: str = "mean"  #: how it pools them (:data:`.taps.POOLS`; absent before the choice: ``"mean"``)
    mirror: bool = False  #: predictions average the image and its mirror image


def checkpoint_fields(obj: dict, name: str) -> CheckpointFields:
    """Validate a loaded convviz checkpoint (nothing is built); raise :class:`ModelError`."""
    def bad(field: str, why: str) -> ModelError:
        return ModelError(f"{name}: bad checkpoint field {field!r}: {why}")

    arch = obj.get("arch")
    if not isinstance(arch, str) or not arch.strip() or len(arch) > 200:
        raise bad("arch", "expected an architecture name")
    labels = obj.get("labels")
    if not isinstance(labels, (list, tuple)) or not 1 <= len(labels) <= MAX_LABELS:
        raise bad("labels", f"expected a list of 1 to {MAX_LABELS} class names")
    if not all(isinstance(t, str) and t.strip() and len(t) <= MAX_LABEL_CHARS for t in labels):
        raise bad("labels", f"every class name must be a non-empty string of at most {MAX_LABEL_CHARS} characters")
    preprocess = _preprocess_fields(obj.get("preprocess", {}), bad)
    state = unwrap_state_dict(obj.get("state_dict"), name)
    head = head_classes(state)
    if head is not None and head != len(labels):
        raise bad("labels", f"{len(labels)} names but the classifier has {head} outputs")
    training = obj.get("training")
    if training is not None and (not isinstance(training, dict) or not _plain(training)):
        raise bad("training", "expected a plain dict of numbers, strings and lists")
    taps, pool, mirror = _head_fields(obj.get("head", {}), bad)
    return CheckpointFields(arch.strip(), tuple(labels), preprocess, state, training, taps, pool, mirror)


def _head_fields(head, bad) -> tuple[tuple[int, ...], str, bool]:
    """The optional ``head`` field: ``{"taps": [stage, …], "pool": one of POOLS, "mirror": bool}``."""
    if not isinstance(head, dict):
        raise bad("head", "expected a dict")
    unknown = set(head) - {"taps", "pool", "mirror"}
    if unknown:
        raise bad("head", f"unknown key {sorted(map(str, unknown))[0]!r}")
    taps = head.get("taps", [])
    if not isinstance(taps, (list, tuple)) or len(taps) > 16 or not all(_is_int(t) and 0 <= t < 64 for t in taps) \
            or len(set(taps)) != len(taps):
        raise bad("head.taps", "expected distinct stage numbers from 0 to 63")
    pool = head.get("pool", "mean")
    if pool not in POOLS:
        raise bad("head.pool", f"expected one of {', '.join(POOLS)}")
    mirror = head.get("mirror", False)
    if not isinstance(mirror, bool):
        raise bad("head.mirror", "expected true or false")
    return tuple(sorted(int(t) for t in taps)), pool, mirror


def _preprocess_fields(pre, bad) -> dict:
    if not isinstance(pre, dict):
        raise bad("preprocess", "expected a dict")
    unknown = set(pre) - {"input_size", "crop_pct", "mean", "std", "interpolation"}
    if unknown:
        raise bad("preprocess", f"unknown key {sorted(map(str, unknown))[0]!r}")
    out = {}
    if "input_size" in pre:
        size, (lo, hi) = pre["input_size"], INPUT_SIZE_RANGE
        if not _is_int(size) or not lo <= size <= hi:
            raise bad("preprocess.input_size", f"expected a whole number of pixels from {lo} to {hi}")
        out["input_size"] = int(size)
    if "crop_pct" in pre:
        crop = pre["crop_pct"]
        if not _is_number(crop) or not 0.05 <= crop <= 1.0:
            raise bad("preprocess.crop_pct", "expected a number from 0.05 to 1")
        out["crop_pct"] = float(crop)
    for key in ("mean", "std"):
        if key in pre:
            values = pre[key]
            if not isinstance(values, (list, tuple)) or len(values) != 3 or not all(_is_number(v) for v in values):
                raise bad(f"preprocess.{key}", "expected 3 finite numbers")
            if key == "std" and not all(v > 0 for v in values):
                raise bad("preprocess.std", "every value must be greater than 0")
            out[key] = tuple(float(v) for v in values)
    if "interpolation" in pre:
        if pre["interpolation"] not in INTERPOLATIONS:
            raise bad("preprocess.interpolation", f"expected one of {', '.join(INTERPOLATIONS)}")
        out["interpolation"] = pre["interpolation"]
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value, depth: int = 0) -> bool:
    """JSON-like data (dict with str keys, list, str, finite-or-not number, bool, None), ≤ 8 deep."""
    if depth > 8:
        return False
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False
