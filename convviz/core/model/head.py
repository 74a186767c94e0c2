"""A classifier's head: find it, replace it, strip it (timm and torchvision models).

The *head* is the last ``nn.Linear`` of the classifier (timm: ``get_classifier``; torchvision:
``fc``, ``classifier``, ``heads`` or ``head``). Loading a fine-tuned checkpoint rebuilds its head
(:func:`convviz.core.model.loading.build_architecture`) and fine-tuning trains a new one
(:mod:`convviz.core.finetune`), so it lives here, below both.
"""
from __future__ import annotations

from torch import nn

from .files import ModelError
from .taps import head_features, taps_of

#: Attribute names torchvision and timm give a classifier (a Linear or a container ending in one).
HEAD_CONTAINERS = ("fc", "classifier", "heads", "head")

__all__ = ["HEAD_CONTAINERS", "head_name", "head_in_features", "replace_head", "set_submodule", "strip_head"]


def head_name(model: nn.Module) -> str:
    """Module path of the final linear classifier (``classifier``, ``fc``, ``heads.head`` …)."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):  # timm
        for name, module in model.named_modules():
            if module is getter() and isinstance(module, nn.Linear):
                return name
    for attr in HEAD_CONTAINERS:
        container = getattr(model, attr, None)
        if isinstance(container, nn.Linear):
            return attr
        if isinstance(container, nn.Module):
            linears = [n for n, m in container.named_modules() if isinstance(m, nn.Linear)]
            if linears:
                return f"{attr}.{linears[-1]}"
    raise ModelError(f"{type(model).__name__}: no linear classifier head to replace (fine-tuning needs one)")


def set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path`` of ``model``."""
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def head_in_features(model: nn.Module) -> int:
    return model.get_submodule(head_name(model)).in_features


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Put a fresh ``Linear(in_features, num_classes)`` where the classifier was; returns it.
    A multi-layer head (:mod:`.taps`) gets the width of every feature it reads."""
    name = head_name(model)
    if taps_of(model):
        head = nn.Linear(head_features(model), num_classes)
        set_submodule(model, name, head)
    elif hasattr(model, "reset_classifier") and callable(model.reset_classifier):
        model.reset_classifier(num_classes)
        head = model.get_submodule(head_name(model))
    else:
        old = model.get_submodule(name)
        head = nn.Linear(old.in_features, num_classes)
        set_submodule(model, name, head)
    return head


def strip_head(model: nn.Module) -> nn.Module:
    """Replace the classifier by ``Identity`` in place: the model then outputs the head's input features."""
    set_submodule(model, head_name(model), nn.Identity())
    return model
