"""Augmentations from a plain :class:`AugmentSpec` (torchvision transforms v2), seeded.

The same (seed, epoch, index) gives the same augmented image in the preview and in training:
:func:`augmented_input` forks the global torch RNG and seeds it per sample, and
:func:`~.features.first_epoch_preview` reads the training dataset itself.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..model.preprocess import Preprocess

if TYPE_CHECKING:  # transforms v2 costs ~3 s of imports: loaded only when an augmentation is built
    from torchvision.transforms import v2

from .augment_spec import DEFAULT_STRENGTHS, AugmentSpec  # noqa: E402,F401  (torch-free; re-exported)


def _interp(preprocess: Preprocess):
    from torchvision.transforms import InterpolationMode

    return {"bicubic": InterpolationMode.BICUBIC, "nearest": InterpolationMode.NEAREST}.get(
        preprocess.interpolation, InterpolationMode.BILINEAR)


def model_input_uint8(rgb: np.ndarray, preprocess: Preprocess) -> torch.Tensor:
    """Centre crop + resize (:meth:`Preprocess.to_uint8`) kept as uint8 (3, S, S)."""
    return torch.from_numpy(preprocess.to_uint8(rgb).copy()).permute(2, 0, 1)


class ModelInput:
    """uint8 (3, H, W) tensor → the model's input as uint8 (3, S, S): :func:`model_input_uint8`
    (as the views and the un-augmented fine-tune see the photo)."""

    def __init__(self, preprocess: Preprocess):
        self.preprocess = preprocess

    def __call__(self, chw: torch.Tensor) -> torch.Tensor:
        return model_input_uint8(chw.permute(1, 2, 0).numpy(), self.preprocess)


def build_transform(spec: AugmentSpec, preprocess: Preprocess) -> v2.Compose:
    """uint8 (3, H, W) tensor → augmented uint8 (3, S, S) tensor at the model's input size."""
    from torchvision.transforms import InterpolationMode, v2

    size, interp = preprocess.input_size, _interp(preprocess)
    ops: list = []
    if spec.rotate > 0 or spec.translate > 0:
        ops.append(v2.RandomAffine(degrees=spec.rotate, translate=(spec.translate, spec.translate) if spec.translate else None,
                                   interpolation=InterpolationMode.BILINEAR))
    if spec.crop > 0:
        ops.append(v2.RandomResizedCrop(size, scale=(max(0.05, 1.0 - spec.crop) * preprocess.crop_pct ** 2, preprocess.crop_pct ** 2),
                                        interpolation=interp, antialias=True))
    else:  # the model's own input (Preprocess.to_uint8, the one home of photo → model pixels)
        ops.append(ModelInput(preprocess))
    if spec.hflip > 0:
        ops.append(v2.RandomHorizontalFlip(spec.hflip))
    if spec.vflip > 0:
        ops.append(v2.RandomVerticalFlip(spec.vflip))
    if spec.jitter > 0:
        ops.append(v2.ColorJitter(brightness=spec.jitter, contrast=spec.jitter, saturation=spec.jitter))
    if spec.grayscale > 0:
        ops.append(v2.RandomGrayscale(spec.grayscale))
    return v2.Compose(ops)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The RNG seed of one sample in one epoch (shared by preview and training)."""
    return (seed * 1_000_003 + epoch * 100_003 + index) % (2**63 - 1)


#: Held around every seeded draw. torchvision's transforms draw from torch's one global generator, so
#: a preview and training in two threads would reseed it under each other's feet: the package that runs
#: them in threads (:func:`convviz.workers.process.share_rng_lock`) installs a lock here.
rng_guard: contextlib.AbstractContextManager = contextlib.nullcontext()


def augmented_input(rgb: np.ndarray | torch.Tensor, transform: v2.Compose, seed: int) -> torch.Tensor:
    """One augmented uint8 (3, S, S) tensor; the same ``seed`` always gives the same result."""
    chw = rgb if isinstance(rgb, torch.Tensor) else torch.from_numpy(np.array(rgb, dtype=np.uint8, order="C", copy=not rgb.flags.writeable)).permute(2, 0, 1)
    with rng_guard, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(chw).contiguous()


def preview_grid(rgb: np.ndarray, spec: AugmentSpec, preprocess: Preprocess, count: int = 8, *,
                 seed: int = 0, index: int = 0) -> list[np.ndarray]:
    """``count`` augmented versions (epochs 0..count-1 of sample ``index``) as (S, S, 3) uint8 arrays."""
    transform = build_transform(spec, preprocess)
    return [augmented_input(rgb, transform, sample_seed(seed, e, index)).permute(1, 2, 0).numpy() for e in range(count)]


@dataclass(frozen=True)
class ShiftDemo:
    """The article's point: shifting by one pixel changes many numbers, not the label."""

    changed_values: int
    total_values: int
    mean_abs_change: float
    max_abs_change: int

    @property
    def changed_fraction(self) -> float:
        return self.changed_values / max(1, self.total_values)


def shift_by_one_pixel_demo(rgb: np.ndarray) -> ShiftDemo:
    """Shift (H, W, 3) uint8 right by one pixel (left column repeated) and count what changes."""
    arr = np.asarray(rgb, dtype=np.int16)
    shifted = np.concatenate([arr[:, :1], arr[:, :-1]], axis=1)
    diff = np.abs(shifted - arr)
    return ShiftDemo(int(np.count_nonzero(diff)), int(diff.size), float(diff.mean()), int(diff.max(initial=0)))
