"""Dropout lab: train vs eval on a real map, with a seeded mask, for each of torch's dropouts.

torch's rule (ATen ``_dropout_impl``), in training with 0 < p < 1:

* ``Dropout``: each value kept with probability 1−p, survivors × 1/(1−p).
* ``Dropout1d`` / ``Dropout2d``: the same, but one draw per channel: whole channels are zeroed.
* ``AlphaDropout``: dropped values are set to SELU's saturation value −α' (α' = 1.7581), then
  everything goes through ``a·x + b`` (a = 1/√((α'²p+1)(1−p)), b = a·α'·p), no 1/(1−p): an
  input of mean 0 and variance 1 keeps them.
* ``FeatureAlphaDropout``: AlphaDropout with one draw per channel.

p = 0 and eval mode are the identity; p = 1 gives zeros (AlphaDropout too). The mask is
drawn as torch draws it after ``torch.manual_seed(seed)`` (one Bernoulli(1−p) draw per value,
or per channel), from the lab's own generator, so the global random state is left alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .names import DROPOUT_KINDS, INFERENCE_NOTE

SELU_SATURATION = 1.7580993408473766  #: α' = λ·α of SELU; SELU(x) → −α' as x → −∞ (ATen's ``alpha``)
CHANNELWISE = ("Dropout1d", "Dropout2d", "FeatureAlphaDropout")
ALPHA = ("AlphaDropout", "FeatureAlphaDropout")


@dataclass(frozen=True)
class DropoutLab:
    """Dropout of a whole layer; maps are of ``channel``, statistics over the whole layer."""

    layer: str
    kind: str  #: one of :data:`DROPOUT_KINDS` (torch's module name)
    p: float
    seed: int
    train: bool
    channel: int
    shape: tuple[int, ...]
    input_map: np.ndarray  #: (H, W) (a vector is one row)
    output_map: np.ndarray
    mask_map: np.ndarray  #: bool (H, W): True where the value survived (all True in eval)
    scale: float  #: factor on kept values: 1/(1−p) (a for the alpha kinds; inf when p = 1), 1 in eval
    shift: float  #: added to every value after scaling: b for the alpha kinds, else 0
    dropped_value: float  #: what a dropped value becomes: 0, or −a·α'(1−p) for the alpha kinds
    kept_share: float  #: measured share of values kept
    channels_dropped: int  #: whole channels dropped (channel-wise kinds; else 0)
    mean_before: float
    mean_after: float
    expected_mean: float  #: the output's mean in expectation over masks (the input's for Dropout)
    identity: bool  #: output equals input exactly (eval mode, or p = 0)
    text: str  #: what happened, in one or two sentences

    @property
    def dropped_share(self) -> float:
        return 1.0 - self.kept_share

    @property
    def channelwise(self) -> bool:
        return self.kind in CHANNELWISE

    @property
    def mean_move(self) -> float | None:
        """This sample's mean vs the expected mean, in % of |expected| (None when that is ~0)."""
        if abs(self.expected_mean) < 1e-12:
            return None
        return 100.0 * (self.mean_after - self.expected_mean) / abs(self.expected_mean)


def dropout_kind(module) -> str | None:
    """The :data:`DROPOUT_KINDS` name of ``module`` (a subclass counts as its torch base), else None."""
    for cls in type(module).__mro__:
        if cls.__name__ in DROPOUT_KINDS and cls.__module__.startswith("torch.nn"):
            return cls.__name__
    return None


def alpha_constants(p: float) -> tuple[float, float]:
    """(a, b) of AlphaDropout with probability ``p`` (0 ≤ p < 1), as ATen computes them."""
    a = 1.0 / math.sqrt((SELU_SATURATION ** 2 * p + 1) * (1 - p))
    return a, SELU_SATURATION * a * p


def dropout_mask(shape, p: float, seed: int, channelwise: bool = False) -> torch.Tensor:
    """The keep mask (float 0/1) torch draws after ``torch.manual_seed(seed)``: one value per
    element of ``shape`` (C, H, W), or per channel, shape (C, 1, 1), when ``channelwise``."""
    shape = tuple(shape)
    noise_shape = (shape[0],) + (1,) * (len(shape) - 1) if channelwise else shape
    generator = torch.Generator().manual_seed(int(seed))
    return torch.empty(noise_shape).bernoulli_(1.0 - float(p), generator=generator)


def apply_dropout(x: torch.Tensor, p: float, seed: int, train: bool = True,
                  kind: str = "Dropout") -> tuple[torch.Tensor, torch.Tensor]:
    """(output, bool keep mask of ``x``'s shape) of dropout ``kind`` on ``x`` (C, H, W), op by op as ATen."""
    if kind not in DROPOUT_KINDS:
        raise ValueError(f"unknown dropout {kind!r} (one of {', '.join(DROPOUT_KINDS)})")
    if not train or p == 0:
        return x.clone(), torch.ones_like(x, dtype=torch.bool)
    if p >= 1:
        return x * torch.zeros(()), torch.zeros_like(x, dtype=torch.bool)
    noise = dropout_mask(x.shape, p, seed, kind in CHANNELWISE)
    keep = noise.bool().expand(x.shape)
    if kind in ALPHA:
        a, _ = alpha_constants(p)
        b = noise.add(-1).mul_(SELU_SATURATION * a).add_(SELU_SATURATION * a * p)
        return (x * noise.mul_(a)).add_(b), keep
    return x * noise.div_(1.0 - p), keep


def _as_map(layer: str, values) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(values, dtype=np.float32) if isinstance(values, np.ndarray) else values)
    x = x.detach().float()
    if x.dim() == 1:  # a vector: one channel, one row
        x = x[None, None]
    elif x.dim() == 2:  # (C, L): a sequence per channel (Dropout1d's input)
        x = x[:, None, :]
    if x.dim() != 3:
        raise ValueError(f"{layer}: dropout lab needs a (C, H, W) map, a (C, L) sequence or a vector, "
                         f"got shape {tuple(x.shape)}")
    return x


def _sentence(kind: str, p: float, x: torch.Tensor, out: torch.Tensor, kept: float, channels_dropped: int,
              expected: float, a: float, b: float) -> str:
    """The train-mode sentence, from the lab's own numbers."""
    before, after = float(x.mean()), float(out.mean())
    c = x.shape[0]
    if kind in CHANNELWISE:
        dropped = (f"{channels_dropped} of {c} channels dropped whole ({100 * (1 - kept):.1f}% of the values; "
                   f"expected {100 * p:.0f}%)")
    else:
        dropped = f"{100 * (1 - kept):.1f}% of the values dropped (expected {100 * p:.0f}%)"
    move = after - expected
    moved = (f"this sample's mean moved by {100 * move / abs(expected):+.1f}% ({expected:.4f} → {after:.4f})"
             if abs(expected) >= 1e-12 else f"this sample's mean is {after:.4f}")
    if kind in ALPHA:
        std = float(x.std()) if x.numel() > 1 else 0.0
        return (f"train mode, p = {p:g}: {dropped}, set to −α' = −{SELU_SATURATION:.4f} (SELU's saturation), then "
                f"a·x + b with a = {a:.4g}, b = {b:.4g} (no 1/(1−p)). It keeps mean 0 and variance 1 of an input "
                f"that has them; this input has mean {before:.4f} and std {std:.4f}, so the expected mean is "
                f"a(1−p)·{before:.4f} = {expected:.4f}; {moved}.")
    return (f"train mode, p = {p:g}: {dropped}, survivors × 1/(1−p) = {1 / (1 - p):.4g}. "
            f"The expected mean is kept ({before:.4f}); {moved}.")


def dropout_lab(layer: str, values: torch.Tensor | np.ndarray, p: float = 0.5, seed: int = 0, train: bool = True,
                channel: int = 0, kind: str = "Dropout") -> DropoutLab:
    """Lab data of dropout ``kind`` with probability ``p`` on ``values`` (C, H, W), (C, L) or (N,)."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be between 0 and 1 (got {p})")
    if kind not in DROPOUT_KINDS:
        raise ValueError(f"unknown dropout {kind!r} (one of {', '.join(DROPOUT_KINDS)})")
    x = _as_map(layer, values)
    if not 0 <= int(channel) < x.shape[0]:
        raise ValueError(f"{layer}: channel {channel} does not exist (0–{x.shape[0] - 1})")
    out, mask = apply_dropout(x, p, int(seed), bool(train), kind)
    kept = float(mask.float().mean())
    before, after = float(x.mean()), float(out.mean())
    identity = bool(torch.equal(out, x))
    a, b = alpha_constants(p) if kind in ALPHA and p < 1 else (1.0, 0.0)
    channels_dropped = int((~mask.flatten(1).any(dim=1)).sum()) if kind in CHANNELWISE and train else 0
    scale, shift, dropped_value, expected = 1.0, 0.0, 0.0, before
    if not train or p == 0:
        text = (f"eval mode: {INFERENCE_NOTE} Mean {before:.4f} → {after:.4f}." if not train else
                f"p = 0: nothing is dropped; the output is the input (mean {before:.4f}).")
    elif p >= 1:
        scale, expected = float("inf"), 0.0
        note = " (not −α')" if kind in ALPHA else ""
        text = f"p = 1: every value is dropped; torch returns all zeros{note}."
    else:
        if kind in ALPHA:
            scale, shift, dropped_value, expected = a, b, b - SELU_SATURATION * a, a * (1 - p) * before
        else:
            scale = 1.0 / (1.0 - p)
        text = _sentence(kind, p, x, out, kept, channels_dropped, expected, a, b)
    c = int(channel)
    return DropoutLab(
        layer=layer, kind=kind, p=p, seed=int(seed), train=bool(train), channel=c,
        shape=tuple(int(n) for n in x.shape), input_map=x[c].numpy().copy(), output_map=out[c].numpy().copy(),
        mask_map=mask[c].numpy().copy(), scale=scale, shift=shift, dropped_value=dropped_value, kept_share=kept,
        channels_dropped=channels_dropped, mean_before=before, mean_after=after, expected_mean=expected,
        identity=identity, text=text,
    )
