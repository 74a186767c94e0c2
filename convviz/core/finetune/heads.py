"""Head replacement and freezing for timm and torchvision classifiers.

The *head* is the last ``nn.Linear`` of the classifier (timm: ``reset_classifier``; torchvision:
``fc``, ``classifier`` or ``heads``). Freezing strategies: ``"head"`` (only the new head
trains), ``"last:N"`` (also the last N backbone blocks), ``"none"`` (everything trains).
Frozen BatchNorm layers stay in eval mode during training (:func:`set_train_mode`).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..model_files import ModelError
from ..taps import head_features, taps_of
from .train_config import parse_freeze

_HEAD_CONTAINERS = ("fc", "classifier", "heads", "head")
_BLOCK_CONTAINERS = ("blocks", "features", "stages", "layers")


def head_name(model: nn.Module) -> str:
    """Module path of the final linear classifier (``classifier``, ``fc``, ``heads.head`` …)."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):  # timm
        for name, module in model.named_modules():
            if module is getter() and isinstance(module, nn.Linear):
                return name
    for attr in _HEAD_CONTAINERS:
        container = getattr(model, attr, None)
        if isinstance(container, nn.Linear):
            return attr
        if isinstance(container, nn.Module):
            linears = [n for n, m in container.named_modules() if isinstance(m, nn.Linear)]
            if linears:
                return f"{attr}.{linears[-1]}"
    raise ModelError(f"{type(model).__name__}: no linear classifier head to replace (fine-tuning needs one)")


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def head_in_features(model: nn.Module) -> int:
    return model.get_submodule(head_name(model)).in_features


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Put a fresh ``Linear(in_features, num_classes)`` where the classifier was; returns it.
    A multi-layer head (:mod:`..taps`) gets the width of every feature it reads."""
    name = head_name(model)
    if taps_of(model):
        head = nn.Linear(head_features(model), num_classes)
        _set(model, name, head)
    elif hasattr(model, "reset_classifier") and callable(model.reset_classifier):
        model.reset_classifier(num_classes)
        head = model.get_submodule(head_name(model))
    else:
        old = model.get_submodule(name)
        head = nn.Linear(old.in_features, num_classes)
        _set(model, name, head)
    return head


def strip_head(model: nn.Module) -> nn.Module:
    """Replace the classifier by ``Identity`` in place: the model then outputs the head's input features."""
    _set(model, head_name(model), nn.Identity())
    return model


def backbone_blocks(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Ordered backbone units (name, module paths): containers like ``blocks``/``features`` are
    expanded into their children, neighbouring top-level layers grouped; the head is excluded."""
    head = head_name(model)
    units: list[tuple[str, list[str]]] = []
    loose: list[str] = []
    for name, child in model.named_children():
        if head == name or head.startswith(name + ".") and name in _HEAD_CONTAINERS:
            continue
        if not any(p.numel() for p in child.parameters()):
            continue
        if name in _BLOCK_CONTAINERS and len(list(child.children())) > 1:
            if loose:
                units.append((loose[0] if len(loose) == 1 else "+".join(loose), loose))
                loose = []
            units += [(f"{name}.{c}", [f"{name}.{c}"]) for c, m in child.named_children() if any(True for _ in m.parameters())]
        elif len(list(child.children())) > 0 and not isinstance(child, (nn.BatchNorm2d,)) and name.startswith("layer"):
            if loose:
                units.append((loose[0] if len(loose) == 1 else "+".join(loose), loose))
                loose = []
            units.append((name, [name]))
        else:
            loose.append(name)
    if loose:
        units.append((loose[0] if len(loose) == 1 else "+".join(loose), loose))
    return units


@dataclass(frozen=True)
class FreezeReport:
    strategy: str
    trainable_params: int
    total_params: int
    frozen_modules: list[str]  # module paths whose parameters are all frozen (for the Layers tree)
    trainable_blocks: list[str]


def apply_freeze(model: nn.Module, strategy: str = "head") -> FreezeReport:
    """Set ``requires_grad`` per strategy (the head always trains) and report counts."""
    kind, n = parse_freeze(strategy)
    head = head_name(model)
    blocks = backbone_blocks(model)
    if kind == "last" and n > len(blocks):
        raise ValueError(f"last:{n}: the model has only {len(blocks)} blocks")
    open_blocks = [] if kind == "head" else [b for b, _ in blocks] if kind == "none" else [b for b, _ in blocks[-n:]]
    open_paths = [head] + [p for b, paths in blocks if b in open_blocks for p in paths]
    for name, param in model.named_parameters():
        param.requires_grad = kind == "none" or any(name == p or name.startswith(p + ".") for p in open_paths)
    frozen = [name for name, m in model.named_modules()
              if name and any(True for _ in m.parameters(recurse=False)) and not any(p.requires_grad for p in m.parameters(recurse=False))]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return FreezeReport(strategy, trainable, total, frozen, open_blocks)


_BUFFERS = (".running_mean", ".running_var", ".num_batches_tracked")


def head_freeze_report(state: dict, head: str = "classifier") -> FreezeReport:
    """What :func:`apply_freeze` reports for ``"head"``, from a state dict alone (no module built):
    parameters are the keys that are not BatchNorm buffers."""
    params = [k for k in state if not k.endswith(_BUFFERS)]
    own = [k for k in params if k.startswith(head + ".")]
    frozen = list(dict.fromkeys(k.rpartition(".")[0] for k in params if k not in own))
    return FreezeReport("head", sum(state[k].numel() for k in own), sum(state[k].numel() for k in params), frozen, [])


def set_train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, but modules whose parameters are all frozen (BatchNorm, Dropout in frozen
    parts) stay in eval mode so their running statistics do not drift."""
    model.train()
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (not own or not any(p.requires_grad for p in own)):
            module.eval()
    return model
