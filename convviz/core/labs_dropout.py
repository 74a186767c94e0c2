"""Dropout lab: train vs eval on a real map, with a seeded mask.

In training, ``F.dropout`` zeroes each value with probability ``p`` and multiplies the
survivors by ``1/(1−p)`` so that the mean stays the same in expectation; in eval mode it
is the identity. :func:`dropout_lab` draws its mask exactly as ``F.dropout`` does after
``torch.manual_seed(seed)`` (a Bernoulli(1−p) draw per value), from its own generator, so
the global random state is left alone.
"""
from __future__ import annotations

from .lab_names import INFERENCE_NOTE  # noqa: F401  (re-exported)

from dataclasses import dataclass

import numpy as np
import torch



@dataclass(frozen=True)
class DropoutLab:
    """Dropout of a whole layer; maps are of ``channel``, statistics over the whole layer."""

    layer: str
    p: float
    seed: int
    train: bool
    channel: int
    shape: tuple[int, ...]
    input_map: np.ndarray  #: (H, W) (a vector is one row)
    output_map: np.ndarray
    mask_map: np.ndarray  #: bool (H, W): True where the value survived (all True in eval)
    scale: float  #: 1/(1−p) in training (inf when p = 1), 1 in eval
    kept_share: float  #: measured share of values kept
    mean_before: float
    mean_after: float
    identity: bool  #: output equals input exactly (eval mode, or p = 0)
    text: str  #: what happened, in one or two sentences

    @property
    def dropped_share(self) -> float:
        return 1.0 - self.kept_share


def dropout_mask(shape, p: float, seed: int) -> torch.Tensor:
    """The keep mask (float 0/1) ``F.dropout(p, training=True)`` draws after ``torch.manual_seed(seed)``."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.empty(tuple(shape)).bernoulli_(1.0 - float(p), generator=generator)


def apply_dropout(x: torch.Tensor, p: float, seed: int, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, keep mask) of dropout on ``x``: ``x · mask/(1−p)`` in training, ``x`` in eval."""
    if not train or p == 0:
        return x.clone(), torch.ones_like(x, dtype=torch.bool)
    mask = dropout_mask(x.shape, p, seed)
    if p >= 1:
        return x * 0.0, mask.bool()
    return x * mask.div_(1.0 - p), mask.bool()


def dropout_lab(layer: str, values: torch.Tensor | np.ndarray, p: float = 0.5, seed: int = 0, train: bool = True,
                channel: int = 0) -> DropoutLab:
    """Lab data of dropout with probability ``p`` on ``values`` (C, H, W) or a vector (N,)."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be between 0 and 1 (got {p})")
    x = torch.as_tensor(np.asarray(values, dtype=np.float32) if isinstance(values, np.ndarray) else values)
    x = x.detach().float()
    if x.dim() == 1:
        x = x[None, None]
    if x.dim() != 3:
        raise ValueError(f"{layer}: dropout lab needs a (C, H, W) map or a vector, got shape {tuple(x.shape)}")
    if not 0 <= int(channel) < x.shape[0]:
        raise ValueError(f"{layer}: channel {channel} does not exist (0–{x.shape[0] - 1})")
    out, mask = apply_dropout(x, p, int(seed), bool(train))
    kept = float(mask.float().mean())
    before, after = float(x.mean()), float(out.mean())
    identity = bool(torch.equal(out, x))
    if not train:
        text = f"eval mode: {INFERENCE_NOTE} Mean {before:.4f} → {after:.4f}."
        scale = 1.0
    elif p >= 1:
        text = "p = 1: every value is dropped; the output is all zeros."
        scale = float("inf")
    else:
        scale = 1.0 / (1.0 - p)
        text = (f"train mode, p = {p:g}: {100 * (1 - kept):.1f}% of the values dropped (expected {100 * p:.0f}%), "
                f"survivors × 1/(1−p) = {scale:.4g}, so the mean stays about the same: "
                f"{before:.4f} → {after:.4f}.")
    c = int(channel)
    return DropoutLab(
        layer=layer, p=p, seed=int(seed), train=bool(train), channel=c, shape=tuple(int(n) for n in x.shape),
        input_map=x[c].numpy().copy(), output_map=out[c].numpy().copy(), mask_map=mask[c].numpy().copy(),
        scale=scale, kept_share=kept, mean_before=before, mean_after=after, identity=identity, text=text,
    )
