"""The progress updates and result of a fine-tune run, and what its stages pass each other (plain data)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from ..model.files import checkpoint_dict, save_checkpoint
from ..model.preprocess import Preprocess
from ..model.taps import tap_sentence
from .evaluate import Evaluation
from .heads import FreezeReport
from .network import Network, Trained
from .scan import ScanResult, Skipped
from .train_config import FAST_EPOCHS, FULL_EPOCHS, TrainConfig  # noqa: F401 (re-exported)


@dataclass(kw_only=True)
class TrainProgress:
    """One update: ``stage`` is features | train | evaluate | done | cancelled."""

    stage: str
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    fraction: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    batch_grid: np.ndarray | None = None  # (H, W, 3) uint8: the current augmented batch (full loop)
    message: str = ""
    result: "FineTuneResult | None" = None
    unit: str = "epoch"  # what one point of ``history`` is: "epoch", or "L-BFGS iteration" (the fast path's head)


@dataclass(frozen=True, kw_only=True)
class FineTuneResult:
    """What a run hands back; built in one place (:func:`.train.fine_tune_network`)."""

    model: nn.Module | None  # eval mode, CPU; None when the run built no module (see ``state_dict``)
    arch: str
    labels: list[str]
    preprocess: Preprocess
    evaluation: Evaluation
    history: dict[str, list[float]]
    config: TrainConfig
    freeze: FreezeReport
    seconds: float
    cancelled: bool
    train_images: int
    val_images: int
    skipped: list[Skipped]
    backbone: str = "eager"  # how features were computed: onnx | eager | full (the full loop)
    state_dict: dict[str, torch.Tensor] | None = None  # the trained weights when ``model`` is None
    taps: tuple[int, ...] = ()  # stages the new head also reads
    pool: str = "mean"  # how it pools them (core.taps.POOLS)
    kept_epoch: int | None = None  # full loop: the state kept (best on validation): 0 = the warm-started head, n = epoch n

    @property
    def reads(self) -> str:
        """What the new head reads, as a sentence ("" for a plain head)."""
        return tap_sentence(self.taps, self.pool)

    def checkpoint(self) -> dict:
        training = {**asdict(self.config), "augment": self.config.augment.names(), "val_accuracy": self.evaluation.accuracy,
                    "train_images": self.train_images, "val_images": self.val_images, "cancelled": self.cancelled,
                    "seconds": round(self.seconds, 3), "history": self.history, "kept_epoch": self.kept_epoch}
        return checkpoint_dict(self.model if self.model is not None else self.state_dict, arch=self.arch, labels=self.labels,
                               preprocess=self.preprocess, training=training, taps=self.taps, pool=self.pool,
                               mirror=self.config.mirror_test)

    def save(self, path: str) -> None:
        """Atomic save (temp file, fsync, rename); reload with ``load_model(path)``."""
        save_checkpoint(path, self.checkpoint())


@dataclass(frozen=True)
class Run:
    """One run's inputs, handed to each of its stages."""

    network: Network
    scan: ScanResult
    config: TrainConfig  # resolved
    stop: Callable[[], bool]
    started: float
    on_status: Callable[[str], None] | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.scan.classes)

    def progress(self, stage: str, fraction: float, **fields) -> TrainProgress:
        """An update at ``fraction`` of the run, with its ETA and the time since it started."""
        return TrainProgress(stage=stage, fraction=fraction, eta_s=eta(self.started, fraction),
                             elapsed_s=time.perf_counter() - self.started, **fields)


@dataclass(frozen=True)
class Outcome:
    """What the fast path or the full loop ends with; :func:`.train.fine_tune_network` makes the result of it."""

    trained: Trained
    evaluation: Evaluation
    history: dict[str, list[float]]
    cancelled: bool
    backbone: str  # onnx | eager (fast path) | full
    last: TrainProgress | None
    kept_epoch: int | None = None
    pool: str | None = None  # how the new head pools the tapped stages, where the run chose it (None: the network's)


def eta(started: float, fraction: float) -> float | None:
    """Seconds left, extrapolated from the time since ``started``; None while too early to say."""
    elapsed = time.perf_counter() - started
    return elapsed / fraction * (1 - fraction) if fraction > 0.02 else None


def preprocess_for(base: Preprocess, config: TrainConfig) -> Preprocess:
    """The input a run uses: by default the whole (centred square) image at the model's own input
    size. On 40 random 250/150 splits of the clothing set the whole image at 224 px beat the whole
    image at 256 px (224 / 0.875, ImageNet's object scale) by 0.6 ± 0.25 points (19 splits won, 12
    lost), at 0.77× the forward cost; the model's own 87.5 % centre crop did worse than either."""
    return replace(base, input_size=config.input_size or base.input_size, crop_pct=config.crop_pct or base.crop_pct)


def final_progress(last: TrainProgress | None, result: FineTuneResult) -> TrainProgress:
    """The run's last update: ``done`` (or ``cancelled``), carrying ``result``."""
    ev = result.evaluation
    return replace(last or TrainProgress(stage="done", epochs=result.config.epochs),
                   stage="cancelled" if result.cancelled else "done", fraction=1.0, eta_s=0.0,
                   elapsed_s=result.seconds, val_acc=ev.accuracy, val_loss=ev.loss, result=result)
