"""The network a run fine-tunes, and the network it hands back with its new head.

A :class:`Network` is either a built model (the app, any architecture; the full loop trains it
in place) or only a state dict (the bundled model on the CLI's fast path: the features come from
the shipped graph filled with it, so timm is never imported). Either way the rest of the run is
the same; only :meth:`Network.headless`, :meth:`Network.backbone_state` and :meth:`Network.with_head`
look at which it is.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..model.loading import load_model
from ..model.preprocess import Preprocess
from ..model.taps import (DEFAULT_POOL, add_taps, layout, mean_columns, stage_channels, state_head_features, state_widths,
                          tap_suffix)
from .heads import FreezeReport, apply_freeze, head_freeze_report, head_name, headless, replace_head

#: the classifier's key prefix in a state-only network (a timm EfficientNet: the bundled model)
STATE_HEAD = "classifier"


@dataclass(frozen=True)
class Trained:
    """The network with its new head: ``model`` (eval, CPU), or ``state`` when none was built."""

    freeze: FreezeReport
    model: nn.Module | None = None
    state: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True, eq=False)
class Network:
    """What a run starts from: ``model`` (taps added, the run's own copy), or only its ``state``."""

    arch: str  #: the spec a checkpoint rebuilds it from (``default``, ``resnet18``, ``timm:NAME``)
    preprocess: Preprocess  #: the run's input
    taps: tuple[int, ...] = ()  #: stages the head reads beside the last layer (:mod:`..taps`)
    pool: str = DEFAULT_POOL  #: how it pools them (:data:`..taps.POOLS`)
    model: nn.Module | None = None
    state: Mapping[str, torch.Tensor] | None = None

    @property
    def graph_name(self) -> str:
        """The architecture and what the headless network outputs (names cached graphs)."""
        return self.arch + tap_suffix(self.taps, self.pool)

    def built(self) -> nn.Module:
        """The model, built from ``arch`` (with ``state``) when the network is only a state dict."""
        if self.model is not None:
            return self.model
        model = load_model(self.arch).module  # its classifier is stripped or replaced before any use
        model.load_state_dict(dict(self.state))
        return add_taps(model, self.taps, self.pool)

    def headless(self) -> nn.Module:
        """A copy without the classifier: (N, 3, S, S) → (N, D) features, eval, channels_last."""
        return headless(self.built())

    def mean_columns(self) -> list[int]:
        """The columns of this network's features that a ``"mean"``-pooled head reads (:func:`~..taps.mean_columns`)."""
        return mean_columns(self._parts())

    def _parts(self) -> tuple[tuple[str, int], ...]:
        """:func:`~..taps.layout` of the head input (built model or state dict alike)."""
        if self.model is not None:
            last, widths = int(self.model.num_features), [stage_channels(self.model, t) for t in self.taps]
        else:
            last, widths = state_widths(self.state, self.taps)
        return layout(last, widths, self.taps, self.pool)

    def widened(self, weight: torch.Tensor, pool: str | None) -> torch.Tensor:
        """A fitted head's ``weight`` over this network's whole head input: a ``"mean"`` head's, read from a
        network that also pools log standard deviations, gets zeros there (the same function)."""
        if pool is None or pool == self.pool or not weight.numel():
            return weight
        parts = self._parts()
        wide = weight.new_zeros(len(weight), sum(width for _, width in parts))
        wide[:, mean_columns(parts)] = weight
        return wide

    def pooled(self, pool: str) -> "Network":
        """This network with its tapped stages pooled as ``pool`` (a built model is changed in place)."""
        if pool == self.pool:
            return self
        if self.model is not None:
            add_taps(self.model, self.taps, pool)
        return replace(self, pool=pool)

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The state dict without the classifier's tensors (what the headless network reads)."""
        head = head_name(self.model) if self.model is not None else STATE_HEAD
        state = self.model.state_dict() if self.model is not None else self.state
        return {k: v for k, v in state.items() if not k.startswith(head + ".")}

    def with_head(self, weight: torch.Tensor, bias: torch.Tensor, classes: int, seed: int) -> Trained:
        """The network with a new ``classes``-way head holding ``weight``/``bias`` (empty: the run was
        cancelled before the head was fitted; the head keeps its seeded initialisation), only it trainable."""
        if self.model is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                head = replace_head(self.model, classes)
            load_head(head, weight, bias)
            return Trained(apply_freeze(self.model, "head"), model=self.model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = nn.Linear(state_head_features(self.state, self.taps, self.pool), classes)
        load_head(head, weight, bias)
        state = dict(self.state)
        state[f"{STATE_HEAD}.weight"], state[f"{STATE_HEAD}.bias"] = head.weight.detach(), head.bias.detach()
        return Trained(head_freeze_report(state, STATE_HEAD), state=state)


def load_head(head: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Copy a fitted head's weights into ``head`` (nothing when the fit was cancelled before it ran)."""
    if weight.numel():
        with torch.no_grad():
            head.weight.copy_(weight.to(head.weight.device))
            head.bias.copy_(bias.to(head.bias.device))
