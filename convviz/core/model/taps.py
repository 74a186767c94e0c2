"""Multi-layer heads: a classifier that reads earlier blocks' pooled outputs beside the last layer's.

A linear head on a frozen network sees only what the last layer kept. The global-average-pooled
outputs of two middle stages (EfficientNet-Lite0's ``blocks.4`` and ``blocks.5``: 112 + 192
channels, beside ``bn2``'s 1280) add mid-level texture and part features that ImageNet's last
layer discards. On 40 random 250/150 splits of the clothing set this raised the fast path's
validation accuracy by 1.1 ± 0.2 points (30 splits won, 7 lost) for no measurable forward cost.
Pooling each tapped stage as its mean *and* the log of its standard deviation over the map (how
much a channel varies across the image, a texture statistic; ``pool="mean+logstd"``, the default
since) added 0.38 ± 0.12 points more (21 won, 5 lost); the std itself +0.32, the std of ``bn2``
−0.28, max or GeM pooling less (``tests/bench/bench_head_recipes.py``).

:func:`add_taps` does it with forward hooks on a timm EfficientNet-family model: each tapped stage
keeps its pooled output, and ``global_pool`` returns ``[pool(bn2), pool(blocks[i]) for i in taps]``
instead of ``pool(bn2)``, where a stage's pool is its channels' means, or with ``"mean+logstd"`` their
means then their log standard deviations. The model's class, module tree, names and state-dict keys are unchanged
(every panel explores it as before); only the classifier's input grows. A checkpoint records the
taps, and loading rebuilds the same forward (:func:`convviz.core.model.loading.build_architecture`).
"""
from __future__ import annotations

from contextvars import ContextVar

import torch
from torch import nn

DEFAULT_TAPS = (4, 5)
POOLS = ("mean", "mean+logstd")  #: how a tapped stage is pooled (``"mean"``: checkpoints written before the choice)
DEFAULT_POOL = "mean+logstd"
_PARTS = ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "global_pool", "classifier")


def can_tap(model: nn.Module) -> bool:
    """True for timm's ``EfficientNet`` class (Lite0-4, B0-B8, MixNet, MnasNet …: stem, ``blocks``
    stages, ``conv_head``, ``bn2``, ``global_pool``, classifier in that order)."""
    return type(model).__name__ == "EfficientNet" and type(model).__module__.startswith("timm.") \
        and all(hasattr(model, part) for part in _PARTS) and isinstance(model.blocks, nn.Sequential)


#: the pooled stage outputs of the forwards running in this context, by :class:`_Tapping`; each
#: thread has its own context, so two threads may run one model
_POOLED: ContextVar[dict | None] = ContextVar("convviz_taps_pooled", default=None)


class _Tapping:
    """``global_pool``'s forward hook: appends the pooled outputs the tapped stages kept.
    A plain object, no reference to the model: no cycle."""

    def __init__(self, taps: tuple[int, ...], pool: str):
        self.taps, self.pool = taps, pool

    def keep(self, stage: int, output: torch.Tensor) -> None:
        kept = _POOLED.get()
        if kept is None:
            kept = {}
            _POOLED.set(kept)
        kept.setdefault(self, {})[stage] = pooled(output, self.pool)

    def __call__(self, module, args, output: torch.Tensor) -> torch.Tensor:
        kept = (_POOLED.get() or {}).pop(self, {})
        if any(t not in kept for t in self.taps):
            raise RuntimeError("a multi-layer head needs the whole forward (its stages ran before global_pool)")
        return torch.cat([output.flatten(1), *(kept[t] for t in self.taps)], 1)


def pooled(maps: torch.Tensor, pool: str) -> torch.Tensor:
    """(N, C, H, W) → (N, C) channel means, or with ``"mean+logstd"`` (N, 2C): the means, then
    ½·log(variance + 1e-6) (population variance: a constant factor, which the head's standardisation removes)."""
    mean = maps.mean((2, 3))
    if pool == "mean":
        return mean
    return torch.cat([mean, 0.5 * torch.log(maps.var((2, 3), correction=0) + 1e-6)], 1)


def check_pool(pool: str) -> str:
    """``pool`` if it is one of :data:`POOLS`; ValueError otherwise."""
    if pool not in POOLS:
        raise ValueError(f"tap pool {pool!r}: expected one of {', '.join(POOLS)}")
    return pool


class _Keep:
    """A tapped stage's forward hook: hands its output to the :class:`_Tapping`."""

    def __init__(self, tapping: _Tapping, stage: int):
        self.tapping, self.stage = tapping, stage

    def __call__(self, module, args, output: torch.Tensor) -> None:
        self.tapping.keep(self.stage, output)


def _tapping(model: nn.Module) -> _Tapping | None:
    pool = getattr(model, "global_pool", None)
    hooks = pool._forward_hooks.values() if isinstance(pool, nn.Module) else ()
    return next((h for h in hooks if isinstance(h, _Tapping)), None)


def taps_of(model: nn.Module) -> tuple[int, ...]:
    """The stages whose pooled outputs the classifier reads (empty for a plain model)."""
    tapping = _tapping(model) if isinstance(model, nn.Module) else None
    return tapping.taps if tapping is not None else ()


def pool_of(model: nn.Module) -> str:
    """How ``model``'s tapped stages are pooled (``"mean"`` for a plain model, which reads no stage)."""
    tapping = _tapping(model) if isinstance(model, nn.Module) else None
    return tapping.pool if tapping is not None else "mean"


def tap_suffix(taps, pool: str) -> str:
    """What a tapped network's name adds (``+tap4+tap5+mean+logstd``; "" untapped): names cached graphs."""
    names = "".join(f"+tap{t}" for t in taps)
    return names + (f"+{pool}" if names and pool != "mean" else "")


def tap_note(taps, pool: str) -> str:
    """What a head with ``taps`` reads, in words (the model card)."""
    stages = [f"blocks.{t}" for t in taps]
    if pool == "mean":
        return f"the head reads the pooled outputs of the last layer, {', '.join(stages)}"
    listed = " and ".join([", ".join(stages[:-1]), stages[-1]] if len(stages) > 1 else stages)
    return (f"the head reads the pooled outputs of the last layer and, of {listed}, "
            "each channel's mean and log standard deviation over the map")


def tap_sentence(taps, pool: str, aside: str = "") -> str:
    """:func:`tap_note` as a sentence (capitalised, ``aside`` before the full stop); "" without taps."""
    if not taps:
        return ""
    note = tap_note(taps, pool)
    return f"{note[:1].upper()}{note[1:]}{aside}."


def check_taps(model: nn.Module, taps) -> tuple[int, ...]:
    """``taps`` as a sorted tuple of distinct stage indices of ``model``; ValueError otherwise."""
    taps = tuple(sorted(set(int(t) for t in taps)))
    if not taps:
        return taps
    if not can_tap(model):
        raise ValueError(f"{type(model).__name__}: multi-layer heads need a timm EfficientNet-family model")
    if taps[0] < 0 or taps[-1] >= len(model.blocks) - 1:
        raise ValueError(f"taps {list(taps)}: stages 0 to {len(model.blocks) - 2} can be tapped")
    return taps


def default_taps(model: nn.Module) -> tuple[int, ...]:
    """:data:`DEFAULT_TAPS` where ``model`` can take them (a timm EfficientNet with enough stages), else ()."""
    try:
        return check_taps(model, DEFAULT_TAPS)
    except ValueError:
        return ()


def stage_channels(model: nn.Module, stage: int) -> int:
    """Output channels of ``model.blocks[stage]`` (its last convolution's)."""
    convs = [m for m in model.blocks[stage].modules() if isinstance(m, nn.Conv2d)]
    return int(convs[-1].out_channels)


def state_widths(state: dict[str, torch.Tensor], taps) -> tuple[int, list[int]]:
    """(last layer's features, each tapped stage's channels) of a tapped EfficientNet from its state dict alone."""
    def last_conv(prefix: str) -> int:
        return int([v for k, v in state.items() if k.startswith(prefix) and v.ndim == 4][-1].shape[0])
    return last_conv("conv_head."), [last_conv(f"blocks.{t}.") for t in taps]


def layout(last: int, widths, taps, pool: str) -> tuple[tuple[str, int], ...]:
    """The parts of a tapped head's input (``global_pool``'s output), in order, with their widths:
    ``("bn2 mean", last)``, then per tapped stage ``("blocks.4 mean", c)`` and, pooled ``"mean+logstd"``,
    ``("blocks.4 log std", c)``."""
    parts = [("bn2 mean", int(last))]
    for t, width in zip(taps, widths):
        parts += [(f"blocks.{t} mean", int(width))] + ([(f"blocks.{t} log std", int(width))] if pool != "mean" else [])
    return tuple(parts)


def mean_columns(parts) -> list[int]:
    """The columns of a head input laid out as ``parts`` (:func:`layout`) that a ``"mean"`` head reads:
    all but the stages' log standard deviations."""
    columns, start = [], 0
    for name, width in parts:
        if not name.endswith("log std"):
            columns += range(start, start + width)
        start += width
    return columns


def state_head_features(state: dict[str, torch.Tensor], taps, pool: str = DEFAULT_POOL) -> int:
    """:func:`head_features` of a tapped EfficientNet from its state dict alone (no module built)."""
    last, widths = state_widths(state, taps)
    return sum(width for _, width in layout(last, widths, taps, pool))


def head_parts(model: nn.Module) -> tuple[tuple[str, int], ...]:
    """:func:`layout` of a tapped model's head input; () for a plain model."""
    taps = taps_of(model)
    if not taps:
        return ()
    return layout(model.num_features, [stage_channels(model, t) for t in taps], taps, pool_of(model))


def head_features(model: nn.Module) -> int:
    """Width of the classifier's input: the last layer's features plus every tapped stage's pooled channels."""
    return sum(width for _, width in head_parts(model)) or int(model.num_features)


def add_taps(model: nn.Module, taps=DEFAULT_TAPS, pool: str = DEFAULT_POOL) -> nn.Module:
    """Make ``model``'s classifier read the ``pool``-ed outputs of ``taps`` too (in place; empty ``taps``:
    the architecture's own forward again). The classifier itself is not replaced: see
    :func:`convviz.core.finetune.heads.replace_head`."""
    taps, pool = check_taps(model, taps), check_pool(pool)
    if _tapping(model) is not None:
        _remove_hooks(model)
    if taps:
        tapping = _Tapping(taps, pool)
        for stage in taps:
            model.blocks[stage].register_forward_hook(_Keep(tapping, stage))
        model.global_pool.register_forward_hook(tapping)
    return model


def _remove_hooks(model: nn.Module) -> None:
    for module in (model.global_pool, *model.blocks):
        for key in [k for k, h in module._forward_hooks.items() if isinstance(h, (_Tapping, _Keep))]:
            for hooks in (module._forward_hooks, module._forward_hooks_with_kwargs, module._forward_hooks_always_called):
                hooks.pop(key, None)
