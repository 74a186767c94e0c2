"""Reading model files safely: TorchScript, state dicts, convviz checkpoints.

Every ``torch.load`` uses ``weights_only=True``; a fully pickled ``nn.Module`` is only
unpickled when the caller opts in (``allow_pickle=True``) and a warning is issued.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile

import torch
from torch import nn

from .errors import first_line

CHECKPOINT_FORMAT = "convviz-checkpoint-1"


class ModelError(ValueError):
    """A model that cannot be loaded; the message is one line for the user."""


class PickledModelError(ModelError):
    """A file holding pickled Python objects, refused without the explicit opt-in."""


def is_torchscript(path: str) -> bool:
    """True for a TorchScript archive (a zip holding ``constants.pkl`` or ``code/``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())


def read_weights(path: str, allow_pickle: bool = False):
    """Load a file's tensors/dicts (or, with ``allow_pickle``, a whole module)."""
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
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if not found:
            detail = re.search(r"WeightsUnpickler error: \s*(.+)", str(exc))
            reason = detail[1].strip() if detail else first_line(exc)
            raise ModelError(f"{name}: not a PyTorch checkpoint ({reason})") from None
        if not allow_pickle:
            raise PickledModelError(
                f"{name}: refused: the file holds pickled Python objects ({found[1]}), not just weights "
                "(open it as a full model only if you trust its source)"
            ) from None
    except Exception as exc:  # a malformed pickle can fail in any way (IndexError, KeyError …)
        raise ModelError(f"{name}: not a PyTorch checkpoint ({first_line(exc)})") from None
    warnings.warn(f"{name}: unpickling a full model; this runs code from the file", stacklevel=2)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{name}: could not unpickle ({first_line(exc)})") from None


def unwrap_state_dict(obj, name: str) -> dict[str, torch.Tensor]:
    """Accept ``{"state_dict": …}`` / ``{"model": …}`` wrappers and ``module.`` prefixes."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
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
    """Number of classes of the last 2-D weight (the classifier), if any."""
    for key in reversed(list(state)):
        if key.endswith("weight") and state[key].ndim == 2:
            return int(state[key].shape[0])
    return None


def save_checkpoint(path: str, *, arch: str, state_dict: dict, labels: list[str], preprocess: dict) -> None:
    """Write a convviz checkpoint atomically (temp file + rename); loadable weights-only."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "labels": list(labels),
        "preprocess": dict(preprocess),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    tmp = f"{path}.part"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def is_convviz_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT
