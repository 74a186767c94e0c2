"""Freezing for timm and torchvision classifiers; the head itself is :mod:`convviz.core.model.head`'s.

Freezing strategies: ``"head"`` (only the new head trains), ``"last:N"`` (also the last N backbone
blocks), ``"none"`` (everything trains). Frozen BatchNorm layers stay in eval mode during training
(:func:`set_train_mode`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..model.head import HEAD_CONTAINERS, head_in_features, head_name, replace_head, strip_head
from .train_config import parse_freeze

__all__ = ["FreezeReport", "apply_freeze", "backbone_blocks", "head_freeze_report", "head_in_features", "head_name",
           "headless", "parse_freeze", "replace_head", "set_train_mode", "strip_head"]

_BLOCK_CONTAINERS = ("blocks", "features", "stages", "layers")


def headless(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without its classifier (its output is the head's input), eval, channels_last."""
    return strip_head(copy.deepcopy(model)).eval().to(memory_format=torch.channels_last)


def backbone_blocks(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Ordered backbone units (name, module paths): containers like ``blocks``/``features`` are
    expanded into their children, neighbouring top-level layers grouped; the head is excluded."""
    head = head_name(model)
    units: list[tuple[str, list[str]]] = []
    loose: list[str] = []
    for name, child in model.named_children():
        if head == name or head.startswith(name + ".") and name in HEAD_CONTAINERS:
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
