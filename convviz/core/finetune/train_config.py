"""The settings of one fine-tune run (torch-free: the panel reads them before torch has loaded)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .augment_spec import AugmentSpec

def parse_freeze(strategy: str) -> tuple[str, int]:
    """``"head"`` / ``"none"`` / ``"last:N"`` → (kind, N); ValueError otherwise."""
    strategy = (strategy or "head").strip()
    if strategy in ("head", "none"):
        return strategy, 0
    kind, _, n = strategy.partition(":")
    if kind == "last" and n.isdigit() and int(n) >= 1:
        return "last", int(n)
    raise ValueError(f"unknown freeze strategy {strategy!r} (use head, last:N or none)")



FAST_EPOCHS, FULL_EPOCHS = 100, 5


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one fine-tune run. ``epochs=None``: 100 on the fast path (L-BFGS iterations for
    ``head="lbfgs"``), 5 on the full loop."""

    epochs: int | None = None
    lr: float | None = None  # None: 1e-3 (fast path) / 3e-4 (full loop)
    batch_size: int = 32
    freeze: str = "head"
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    device: str = "cpu"
    seed: int = 0
    weight_decay: float = 1e-2
    input_size: int | None = None  # None: the model's own
    crop_pct: float | None = 1.0  # whole centred square; None: the model's own
    graph: str = "auto"  # fast path forward: auto | cached | eager (see features.FeatureBackbone)
    workers: int | None = None  # DataLoader decode processes; None: 1 when worth it
    head: str = "lbfgs"  # fast path head fit: lbfgs (logistic regression, L2 by train CV) | adamw
    mirror_train: bool = True  # fast path: add each training image's mirror image as a sample
    l2: float | None = None  # lbfgs: fixed L2 strength; None: chosen by cross-validation on train
    taps: tuple[int, ...] | None = None  # stages the head also reads (core.taps); None: DEFAULT_TAPS where the model allows
    mirror_test: bool = True  # evaluate (and later predict) on the image and its mirror image, log-softmax averaged

    @property
    def fast(self) -> bool:
        return parse_freeze(self.freeze)[0] == "head" and not self.augment.active

    @property
    def unit(self) -> str:
        """What one point of a run's curves is: an L-BFGS iteration (the fast path's default head) or an epoch."""
        return "L-BFGS iteration" if self.fast and self.head == "lbfgs" else "epoch"

    def resolved(self) -> "TrainConfig":
        return replace(self, epochs=self.epochs or (FAST_EPOCHS if self.fast else FULL_EPOCHS),
                       lr=self.lr or (1e-3 if self.fast else 3e-4))
