"""Before / after fine-tuning: two models of one architecture side by side.

Per layer (every module that owns parameters) the relative weight change ‖W_b − W_a‖ / ‖W_a‖ over
its own parameters (buffers such as batch-norm statistics are not weights and are left out): a
frozen layer shows exactly 0, a head the fine-tune replaced (other classes) is "replaced". For one
photo: both models' top predictions (each through its own preprocessing and scoring, as everywhere
else) and one layer's maps, computed from the *same* input pixels when the two models scale their
input alike (then the maps differ only by the weights), with each channel's relative change.

Two models whose layers differ anywhere but in the classifier head are refused in one sentence.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..capture.activations import predict_top
from ..errors import first_line
from ..model.head import head_name
from ..tasks import Need, Scope, TaskInputs, TaskState, task
from .gradcam import grad_cam, spatial_layers
from .layer_tap import layer_row, run_to, table_rows


class ArchitectureMismatch(ValueError):
    """The two models do not share an architecture; the message is one sentence."""


@dataclass(frozen=True)
class WeightChange:
    """How far one layer's own parameters moved from model A to model B."""

    layer: str
    type: str
    params: int
    change: float | None  #: ‖ΔW‖ / ‖W‖ (0.0: identical), None when the layer was replaced
    status: str  #: "unchanged", "changed" or "replaced"
    note: str = ""


@dataclass(frozen=True)
class CompareResult:
    """Two models on one photo and how their weights differ."""

    title_a: str
    title_b: str
    changes: tuple[WeightChange, ...]
    predictions_a: tuple[dict, ...]  #: {"label", "index", "prob"}, best first
    predictions_b: tuple[dict, ...]
    layer: str
    maps_a: np.ndarray  #: (C, H, W) float32 (C, 1, 1 for a vector layer)
    maps_b: np.ndarray
    channel_change: np.ndarray  #: (C,) ‖map_b − map_a‖ / ‖map_a‖ per channel
    same_input: bool  #: both maps come from the same input pixels
    input_note: str = ""
    #: each model's Grad-CAM for its own top class at ``layer`` (:class:`~.gradcam.CamResult`); None when
    #: the layer has no spatial extent
    cam_a: object = None
    cam_b: object = None
    evidence_note: str = ""  #: why there is no Grad-CAM, when there is none

    @property
    def moved(self) -> tuple[WeightChange, ...]:
        return tuple(c for c in self.changes if c.status != "unchanged")

    def summary(self) -> str:
        """One line: how many layers moved, the largest change."""
        moved = [c for c in self.changes if c.status == "changed"]
        replaced = [c for c in self.changes if c.status == "replaced"]
        parts = [f"{len(self.changes) - len(moved) - len(replaced)} of {len(self.changes)} layers unchanged"]
        if moved:
            top = max(moved, key=lambda c: c.change)
            parts.append(f"{len(moved)} moved (most: {top.layer}, {top.change * 100:.2g} %)")
        if replaced:
            parts.append(f"{', '.join(c.layer for c in replaced)} replaced ({replaced[0].note})")
        return "; ".join(parts)


def _param_modules(model: nn.Module) -> dict[str, tuple[nn.Module, dict[str, torch.Tensor]]]:
    return {name: (module, dict(module.named_parameters(recurse=False)))
            for name, module in model.named_modules() if any(True for _ in module.parameters(recurse=False))}


def _head(model: nn.Module) -> str | None:
    try:
        return head_name(model)
    except ValueError:
        return None


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape))


def _difference(mine: dict, theirs: dict, other: str) -> str | None:
    """Why ``theirs`` (model ``other``) is not ``mine``, in a few words; None when they agree."""
    for name, (module, params) in mine.items():
        if name not in theirs:
            return f"{other} has no layer {name}"
        their_module, their_params = theirs[name]
        if type(their_module).__name__ != type(module).__name__:
            return f"{other}'s {name} is a {type(their_module).__name__}, not a {type(module).__name__}"
        for key, value in params.items():
            if key not in their_params:
                return f"{other}'s {name} has no {key}"
            if their_params[key].shape != value.shape:
                return f"{other}'s {name}.{key} is {_shape(their_params[key])}, not {_shape(value)}"
    return None


def check_same_architecture(a: nn.Module, b: nn.Module, title_a: str = "the first model",
                            title_b: str = "the second model") -> None:
    """Raise :class:`ArchitectureMismatch` unless every layer but the heads has the same name, type
    and parameter shapes in both."""
    if isinstance(a, torch.jit.ScriptModule) or isinstance(b, torch.jit.ScriptModule):
        raise ArchitectureMismatch("a TorchScript model cannot be compared layer by layer (use a state dict or a convviz checkpoint)")
    heads = {_head(a), _head(b)} - {None}
    ours = {k: v for k, v in _param_modules(a).items() if k not in heads}
    theirs = {k: v for k, v in _param_modules(b).items() if k not in heads}
    why = _difference(ours, theirs, title_b) or _difference(theirs, ours, title_a)
    if why:
        raise ArchitectureMismatch(f"the two models' architectures do not match ({why}): compare needs a model and "
                                   "one derived from it, such as its fine-tune")


@torch.no_grad()
def weight_changes(a: nn.Module, b: nn.Module) -> tuple[WeightChange, ...]:
    """Per module of ``a`` that owns parameters, in model order: ‖W_b − W_a‖ / ‖W_a‖ over its own parameters."""
    check_same_architecture(a, b)
    theirs = _param_modules(b)
    changes = []
    for name, (module, params) in _param_modules(a).items():
        count = sum(p.numel() for p in params.values())
        kind = type(module).__name__
        other = theirs.get(name, (None, {}))[1]
        if set(other) != set(params) or any(other[k].shape != p.shape for k, p in params.items()):
            note = _replaced_note(params, other)
            changes.append(WeightChange(name, kind, count, None, "replaced", note))
            continue
        if all(torch.equal(p, other[k]) for k, p in params.items()):
            changes.append(WeightChange(name, kind, count, 0.0, "unchanged"))
            continue
        moved = sum(float((other[k].double() - p.double()).pow(2).sum()) for k, p in params.items())
        size = sum(float(p.double().pow(2).sum()) for p in params.values())
        change = float(np.sqrt(moved / size)) if size > 0 else float("inf")
        changes.append(WeightChange(name, kind, count, change, "changed"))
    return tuple(changes)


def _replaced_note(params: dict, other: dict) -> str:
    weight, theirs = params.get("weight"), other.get("weight")
    if weight is not None and theirs is not None and weight.dim() == 2 and theirs.dim() == 2:
        return f"{weight.shape[0]} → {theirs.shape[0]} outputs"
    return "other shapes"


def _same_scaling(pa, pb) -> bool:
    return pa.input_size == pb.input_size and tuple(pa.mean) == tuple(pb.mean) and tuple(pa.std) == tuple(pb.std)


def last_map_layer(rows) -> str:
    """The last layer whose output is a map larger than 1×1 (the default layer of :func:`compare_models`)."""
    names = spatial_layers(rows)
    if not names:
        raise ValueError("this model has no layer with a spatial map")
    return names[-1]


def compare_models(a, b, rgb: np.ndarray, layer: str | None = None, k: int = 5, rows=(),
                   state: TaskState | None = None, evidence: bool = True) -> CompareResult:
    """Models ``a`` and ``b`` (:class:`~convviz.core.model.loading.LoadedModel`) on photo ``rgb``: weight change
    per layer, top-``k`` predictions of each, ``layer``'s maps (default: the last map layer) and, with
    ``evidence``, each model's Grad-CAM for its own top class there."""
    state = state or TaskState()
    check_same_architecture(a.module, b.module, a.title, b.title)
    rows = table_rows(a.module, a.preprocess.input_size, rows)
    with torch.no_grad():
        result = _compare(a, b, rgb, layer, k, rows, state)
    if not evidence or result.maps_a.shape[1] * result.maps_a.shape[2] <= 1:
        return result
    cams = []
    state.progress(0.8, "each model's evidence for its top class (Grad-CAM)")
    for loaded in (a, b):
        state.check()
        try:
            cams.append(grad_cam(loaded, rgb, None, result.layer, rows))
        except ValueError as exc:  # a layer the class scores do not depend on: the rest stands
            return replace(result, evidence_note=f"no Grad-CAM: {first_line(exc)}")
    return replace(result, cam_a=cams[0], cam_b=cams[1])


def _compare(a, b, rgb, layer, k, rows, state) -> CompareResult:
    state.progress(0.1, "weight change per layer")
    changes = weight_changes(a.module, b.module)
    state.check()
    layer = layer or last_map_layer(rows)
    layer_row(a.module, layer, a.preprocess.input_size, rows)  # a clear line for an unknown layer
    preds, inputs = [], []
    for loaded in (a, b):  # each model's predictions from its own input, as everywhere
        x = loaded.preprocess.to_tensor(rgb)
        scores = loaded.class_scores(x)
        preds.append(tuple(predict_top(scores, loaded.label_names(scores.shape[-1]), k)))
        inputs.append(x)
        state.check()
    state.progress(0.5, f"{layer}: both models' maps")
    same = _same_scaling(a.preprocess, b.preprocess)
    xa, xb = inputs[0], inputs[0] if same else inputs[1]
    maps = []
    for loaded, x in ((a, xa), (b, xb)):
        out = run_to(loaded.module, x, layer)[0].float()
        maps.append((out if out.dim() == 3 else out.reshape(-1, 1, 1)).numpy().copy())
    note = "" if same else "the two models scale their input differently: each map comes from its own input"
    if same and (a.preprocess.crop_pct != b.preprocess.crop_pct):
        note = f"both maps from {a.title}'s crop of the photo; {b.title} predicts from its own crop"
    diff = np.sqrt(((maps[1] - maps[0]) ** 2).reshape(len(maps[0]), -1).sum(1)) if maps[0].shape == maps[1].shape \
        else np.full(len(maps[0]), np.nan)
    norm = np.sqrt((maps[0] ** 2).reshape(len(maps[0]), -1).sum(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        channel_change = np.where(norm > 0, diff / norm, np.where(diff > 0, np.inf, 0.0)).astype(np.float32)
    return CompareResult(a.title, b.title, changes, preds[0], preds[1], layer, maps[0], maps[1], channel_change,
                         same, note)


@task(Scope.IMAGE, (Need.MODEL, Need.SECOND_MODEL, Need.IMAGE, Need.GRADIENTS), title="Comparing the two models…")
def compare_task(inputs: TaskInputs, state: TaskState) -> CompareResult:
    """args: ``second_spec`` (the other model; the runner loads it), ``second_is_before`` (the other model
    is the one before, e.g. the pretrained model of a fine-tuned current one), ``layer`` (default: the
    last map), ``k``."""
    args = inputs.args
    first, second = inputs.model, inputs.second
    if args.get("second_is_before"):
        first, second = second, first
    # the rows are the current model's: the same layers as the other's but for the head (checked first)
    return compare_models(first, second, inputs.rgb, args.get("layer"), int(args.get("k", 5)), inputs.rows, state)
