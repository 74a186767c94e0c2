"""The fine-tune steps' plain results, built in one place (no torch, no Qt): what the panel shows.

:func:`train_outcome` is the only place a :class:`TrainOutcome` is made from a core
``FineTuneResult``; the other results are made by their tasks (:mod:`.tasks`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ScanReport:
    """A scanned folder (core :class:`~convviz.core.finetune.scan.ScanResult`) with a thumbnail strip per class."""

    scan: object  #: ScanResult (lists of paths and labels only)
    thumbs: dict  #: class name → list of (path, (h, w, 3) uint8)


@dataclass(frozen=True)
class AugmentPreview:
    """Augmented versions of one image (as training will see them) and the one-pixel-shift numbers."""

    images: list  #: (S, S, 3) uint8 arrays
    grid: np.ndarray  #: the images tiled, ready to show
    shift: object  #: convviz.core.finetune.augment.ShiftDemo of the model-input image
    input_size: int
    seed: int = 0  #: the run's seed the images were drawn with
    first_epoch: bool = False  #: True: training images 1…n as epoch 1 draws them; False: n draws of one photo


@dataclass(frozen=True)
class FreezeInfo:
    """What a freeze strategy trains on the current architecture with ``num_classes`` outputs."""

    strategy: str
    trainable_params: int
    total_params: int
    frozen_modules: list  #: module paths whose parameters are all frozen (for the Layers tree)
    blocks: int  #: backbone blocks "last N" can open
    devices: list  #: "cpu" and "cuda" when present
    reads: str = ""  #: what the new head reads, a sentence (core.model.taps.tap_sentence; "" for a plain head)


@dataclass(frozen=True)
class RunFacts:
    """How a run went: its length, data and what it trained."""

    seconds: float
    train_images: int
    val_images: int
    trainable_params: int
    total_params: int
    backbone: str  #: the feature backend that ran ("onnx", "eager", …)
    epochs_done: int = 0
    unit: str = "epoch"  #: what one entry of ``history`` is: "epoch", or "L-BFGS iteration"
    mirror: bool = False  #: validated (and predicting) on each photo and its mirror image
    kept_epoch: int | None = None  #: full loop: 0 = the warm-started head was kept, n = the state after epoch n
    reads: str = ""  #: what the saved head reads, a sentence (core.model.taps.tap_sentence; "" for a plain head)


@dataclass(frozen=True)
class TrainOutcome:
    """A finished (or cancelled) run: what the results view shows and where the model is."""

    classes: list
    accuracy: float
    loss: float
    per_class_accuracy: dict
    confusion: list  #: rows: true class, columns: predicted class
    misclassified: list  #: core Misclassified(path, true, predicted, prob)
    history: dict
    cancelled: bool
    facts: RunFacts
    checkpoint: str | None  #: the saved file (None when nothing was trained)
    notes: list = field(default_factory=list)
    gallery: list = field(default_factory=list)  #: (Misclassified, (h, w, 3) uint8 thumbnail) per shown image


def train_outcome(result, checkpoint: str | None, notes: list, gallery: list) -> TrainOutcome:
    """The plain outcome of a core ``FineTuneResult`` (its model left behind)."""
    ev = result.evaluation
    facts = RunFacts(result.seconds, result.train_images, result.val_images, result.freeze.trainable_params,
                     result.freeze.total_params, result.backbone, len(result.history.get("val_acc", [])),
                     result.config.unit, result.config.mirror_test, result.kept_epoch,
                     result.reads)
    return TrainOutcome(list(result.labels), ev.accuracy, ev.loss, dict(ev.per_class_accuracy),
                        [list(r) for r in ev.confusion], list(ev.misclassified),
                        {k: list(v) for k, v in result.history.items()}, result.cancelled, facts, checkpoint,
                        list(notes), list(gallery))
