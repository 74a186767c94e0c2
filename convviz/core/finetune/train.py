"""Training as a generator of :class:`TrainProgress`; the last item carries the result.

Two paths, same output:

* **fast** (backbone frozen, no augmentation): backbone features of each training image *and its
  mirror image* (an extra sample, same label) are extracted once (:mod:`.features`, ONNX Runtime
  when available), standardised, and an L2-regularised logistic-regression head is fitted with
  L-BFGS; the L2 strength is chosen by 5-fold cross-validation on the *training* split only (an
  image and its mirror always in the same fold). The validation split is only ever evaluated,
  never used to choose anything. The standardisation is folded into the final ``nn.Linear``, so
  the saved model is the plain architecture with a new head and predicts from one view.
  The input is the whole image (``crop_pct`` 1.0) at the side the model's own centre crop is
  taken from (224 / 0.875 = 256 for the bundled model), so objects keep their ImageNet scale.
  ``head="adamw"`` trains the head with mini-batch AdamW instead (the previous recipe).
* **full** (augmentation or unfrozen blocks): the usual loop over augmented batches.

Cancellation: pass ``should_stop`` (a callable); it is checked once per batch (and once per
epoch of head training), and a cancelled run still ends with a result holding the best model so
far. Abandoning the generator (``.close()``) also stops it, without a result.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import DEFAULT_SPEC, LoadedModel
from ..model_files import ModelError, is_convviz_checkpoint, read_weights
from ..preprocess import Preprocess
from .augment import AugmentSpec, build_transform
from .checkpoint import checkpoint_dict, save_checkpoint
from .evaluate import Evaluation, evaluate_logits
from .features import FeatureBackbone, ImageDataset, extract_features, make_loader, normalize
from .head_fit import choose_l2, fit_logistic, single_thread
from .heads import FreezeReport, apply_freeze, parse_freeze, replace_head, set_train_mode
from .scan import ScanResult, Skipped

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
    input_size: int | None = None  # None: fast path: model's own / its crop_pct (multiple of 32); full loop: model's own
    crop_pct: float | None = 1.0  # whole centred square; None: the model's own
    flip_features: bool = False  # fast path: average features of the image and its mirror
    graph: str = "auto"  # fast path forward: auto | cached | eager (see features.FeatureBackbone)
    workers: int | None = None  # DataLoader decode processes; None: 1 when worth it
    head: str = "lbfgs"  # fast path head fit: lbfgs (logistic regression, L2 by train CV) | adamw
    mirror_train: bool = True  # fast path: add each training image's mirror image as a sample
    l2: float | None = None  # lbfgs: fixed L2 strength; None: chosen by cross-validation on train

    @property
    def fast(self) -> bool:
        return parse_freeze(self.freeze)[0] == "head" and not self.augment.active

    def resolved(self) -> "TrainConfig":
        return replace(self, epochs=self.epochs or (FAST_EPOCHS if self.fast else FULL_EPOCHS),
                       lr=self.lr or (1e-3 if self.fast else 3e-4))


@dataclass
class TrainProgress:
    """One update: ``stage`` is features | train | evaluate | done | cancelled."""

    stage: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    fraction: float
    eta_s: float | None
    elapsed_s: float
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    batch_grid: np.ndarray | None = None  # (H, W, 3) uint8: the current augmented batch (full loop)
    message: str = ""
    result: "FineTuneResult | None" = None


@dataclass
class FineTuneResult:
    model: nn.Module  # eval mode, CPU
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
    backbone: str = "eager"  # how features were computed: prepared | eager | full

    def checkpoint(self) -> dict:
        training = {**asdict(self.config), "augment": self.config.augment.names(), "val_accuracy": self.evaluation.accuracy,
                    "train_images": self.train_images, "val_images": self.val_images, "cancelled": self.cancelled,
                    "seconds": round(self.seconds, 3), "history": self.history}
        return checkpoint_dict(self.model, arch=self.arch, labels=self.labels, preprocess=self.preprocess, training=training)

    def save(self, path: str) -> None:
        """Atomic save (temp file, fsync, rename); reload with ``load_model(path)``."""
        save_checkpoint(path, self.checkpoint())


def arch_of(loaded: LoadedModel) -> str:
    """The architecture spec to rebuild ``loaded`` from (``default``, ``resnet18``, ``timm:NAME``)."""
    spec = loaded.spec
    if "=" in spec:
        spec = spec.split("=", 1)[0].strip()
    elif spec != DEFAULT_SPEC and not spec.startswith("timm:") and ("/" in spec or "." in spec):
        obj = read_weights(spec)
        if not is_convviz_checkpoint(obj):
            raise ModelError(f"{loaded.title}: architecture unknown; fine-tune a named model (default, resnet18, timm:NAME)")
        spec = obj["arch"]
    return spec


def _preprocess_for(loaded: LoadedModel, config: TrainConfig) -> Preprocess:
    base = loaded.preprocess
    size = config.input_size
    if size is None and config.fast and (config.crop_pct or base.crop_pct) >= 1.0 and base.crop_pct < 1.0:
        size = max(32, round(base.input_size / base.crop_pct / 32) * 32)  # whole image at the crop's scale
    return replace(base, input_size=size or base.input_size, crop_pct=config.crop_pct or base.crop_pct)


def prepare_backbone(loaded: LoadedModel, config: TrainConfig = TrainConfig(),
                     on_status: Callable[[str], None] | None = None) -> str:
    """Export (once per machine) and check the graph the fast path will use for ``loaded``; returns its
    kind (``onnx``, ``prepared`` or ``eager``). Run it in the background before training, so that
    training with ``graph="cached"`` finds it ready."""
    config = config.resolved()
    if not config.fast or config.device != "cpu":
        return "eager"
    preprocess = _preprocess_for(loaded, config)
    backbone = FeatureBackbone(loaded.module, preprocess.input_size, arch=arch_of(loaded), device="cpu",
                               graph="auto", on_status=on_status)
    return backbone.kind


def fine_tune(loaded: LoadedModel, scan: ScanResult, config: TrainConfig = TrainConfig(), *,
              should_stop: Callable[[], bool] | None = None,
              on_status: Callable[[str], None] | None = None, copy_model: bool = True) -> Iterator[TrainProgress]:
    """Fine-tune a copy of ``loaded.module`` on ``scan``; the last progress has ``result`` set.

    ``copy_model=False`` trains ``loaded.module`` itself: for a caller that already holds a private
    copy (the app's training job builds one from the spec), saving a second deep copy.
    """
    config = config.resolved()
    if config.head not in ("lbfgs", "adamw"):
        raise ValueError(f"head must be lbfgs or adamw, not {config.head!r}")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA device is available")
    arch = arch_of(loaded)
    preprocess = _preprocess_for(loaded, config)
    model = (copy.deepcopy(loaded.module) if copy_model else loaded.module).cpu()
    stop = should_stop or (lambda: False)
    started = time.perf_counter()
    if config.fast:
        run = _fast(model, scan, config, preprocess, stop, started, on_status, arch)
    else:
        run = _full(model, scan, config, preprocess, stop, started)
    model_out, evaluation, history, freeze, cancelled, kind, last = yield from run
    model_out = model_out.cpu().eval()
    result = FineTuneResult(model_out, arch, list(scan.classes), preprocess, evaluation, history, config, freeze,
                            time.perf_counter() - started, cancelled, len(scan.train), len(scan.val), list(scan.skipped), kind)
    yield replace(last, stage="cancelled" if cancelled else "done", fraction=1.0, eta_s=0.0,
                  elapsed_s=result.seconds, val_acc=evaluation.accuracy, val_loss=evaluation.loss, result=result)


def _eta(started: float, fraction: float) -> float | None:
    elapsed = time.perf_counter() - started
    return elapsed / fraction * (1 - fraction) if fraction > 0.02 else None


def _history() -> dict[str, list[float]]:
    return {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}


def _fast(model, scan, config, preprocess, stop, started, on_status, arch):
    labels = list(scan.classes)
    backbone = FeatureBackbone(model, preprocess.input_size, arch=arch, device=config.device,
                               graph=config.graph, on_status=on_status)
    total = len(scan.train) + len(scan.val)
    # ONNX Runtime already keeps every core busy: a decode process only competes with it (measured)
    workers = config.workers if config.workers is not None else 0 if backbone.kind == "onnx" else None
    states = {}
    done_before = 0
    for split in ("train", "val"):
        samples = getattr(scan, split)
        for done, state in extract_features(backbone, samples, preprocess, batch_size=max(config.batch_size, 32),
                                            flip=config.flip_features, workers=workers,
                                            mirror=config.mirror_train and split == "train" and not config.flip_features):
            fraction = 0.9 * (done_before + done) / total
            yield TrainProgress("features", 0, config.epochs, done_before + done, total, fraction, _eta(started, fraction),
                                time.perf_counter() - started, message=f"{split} features ({backbone.kind})")
            states[split] = state
            if stop():
                break
        done_before += len(samples)
        if stop():
            break
    head = replace_head(model, len(labels))
    freeze = apply_freeze(model, "head")
    history = _history()
    if "val" not in states or len(states["val"]["features"]) < len(scan.val):
        evaluation = evaluate_logits(torch.zeros(0, len(labels)), torch.zeros(0), labels)
        return model, evaluation, history, freeze, True, backbone.kind, TrainProgress("cancelled", 0, config.epochs, 0, 0, 1.0, 0, 0)
    tr, va = states["train"], states["val"]
    xtr, ytr = tr["features"][tr["ok"]], tr["labels"][tr["ok"]]
    xva, yva = va["features"], va["labels"]
    groups = torch.arange(len(xtr))
    if "mirror_features" in tr:  # the mirror image: one more sample, same label, same CV fold
        xtr, ytr, groups = torch.cat([xtr, tr["mirror_features"][tr["ok"]]]), torch.cat([ytr, ytr]), torch.cat([groups, groups])
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    ztr, zva = (xtr - mu) / sd, (xva - mu) / sd
    fit = _lbfgs_head if config.head == "lbfgs" else _adamw_head
    linear, cancelled, last = yield from fit(ztr, ytr, groups, zva, yva, len(labels), config, history, stop, started)
    with torch.no_grad():  # fold the standardisation into the head: W' = W / sd, b' = b - W' mu
        weight = linear.weight / sd
        head.weight.copy_(weight)
        head.bias.copy_(linear.bias - weight @ mu)
        vlogits = linear(zva)
    paths = [s.path for s in scan.val]
    return model, evaluate_logits(vlogits, yva, labels, paths), history, freeze, cancelled, backbone.kind, last


def _lbfgs_head(ztr, ytr, groups, zva, yva, classes, config, history, stop, started):
    yield TrainProgress("train", 0, config.epochs, 0, 1, 0.9, _eta(started, 0.9), time.perf_counter() - started,
                        message="choosing the L2 strength by cross-validation on the training images")
    l2 = config.l2 if config.l2 is not None else choose_l2(ztr, ytr, groups, classes, seed=config.seed)
    updates: list[TrainProgress] = []
    state = {"cancelled": False}

    def on_iteration(linear):
        with torch.no_grad():
            logits, vlogits = linear(ztr), linear(zva)
        _record(history, float(F.cross_entropy(logits, ytr)), float((logits.argmax(1) == ytr).float().mean()),
                float(F.cross_entropy(vlogits, yva)), float((vlogits.argmax(1) == yva).float().mean()))
        epoch = len(history["train_loss"])
        fraction = 0.95 + 0.05 * epoch / config.epochs
        updates.append(TrainProgress("train", epoch, config.epochs, 1, 1, fraction, _eta(started, fraction),
                                     time.perf_counter() - started, history["train_loss"][-1], history["train_acc"][-1],
                                     history["val_loss"][-1], history["val_acc"][-1], _copy(history),
                                     message=f"L-BFGS, L2 {l2:g} (chosen on train)"))
        state["cancelled"] = stop()
        return state["cancelled"]

    linear = single_thread(fit_logistic)(ztr, ytr, classes, l2, config.epochs, on_iteration)
    yield from updates  # the fit takes well under a second: progress is replayed, not streamed
    return linear, state["cancelled"], updates[-1] if updates else None


def _adamw_head(ztr, ytr, groups, zva, yva, classes, config, history, stop, started):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        linear = nn.Linear(ztr.shape[1], classes)
        nn.init.zeros_(linear.weight), nn.init.zeros_(linear.bias)
        order = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.AdamW(linear.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        cancelled, last = False, None
        for epoch in range(config.epochs):
            loss_sum, correct, vloss, vacc = _head_epoch(linear, opt, ztr, ytr, zva, yva, config.batch_size, order)
            _record(history, loss_sum / len(ztr), correct / len(ztr), vloss, vacc)
            fraction = 0.9 + 0.1 * (epoch + 1) / config.epochs
            last = TrainProgress("train", epoch + 1, config.epochs, 1, 1, fraction, _eta(started, fraction),
                                 time.perf_counter() - started, history["train_loss"][-1], history["train_acc"][-1],
                                 vloss, vacc, _copy(history))
            yield last
            if stop():
                cancelled = True
                break
    return linear, cancelled, last  # the last epoch's head: the validation split never picks a model


def _head_epoch(linear, opt, ztr, ytr, zva, yva, batch_size, order):
    """One epoch of the linear head on cached features, single-threaded: ops this small run
    ~50× slower with 2 OpenMP threads on a busy machine (measured), so threads are restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        perm = torch.randperm(len(ztr), generator=order)
        loss_sum = correct = 0.0
        for i in range(0, len(ztr), batch_size):
            idx = perm[i:i + batch_size]
            logits = linear(ztr[idx])
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == ytr[idx]).sum())
        with torch.no_grad():
            vlogits = linear(zva)
            return loss_sum, correct, float(F.cross_entropy(vlogits, yva)), float((vlogits.argmax(1) == yva).float().mean())
    finally:
        torch.set_num_threads(threads)


def _record(history, tl, ta, vl, va) -> None:
    for key, value in zip(("train_loss", "train_acc", "val_loss", "val_acc"), (tl, ta, vl, va)):
        history[key].append(float(value))


def _copy(history):
    return {k: list(v) for k, v in history.items()}


def _grid(images: torch.Tensor, count: int = 8, side: int = 64) -> np.ndarray:
    """First ``count`` uint8 (3, S, S) images → one (side, count*side, 3) uint8 strip."""
    small = F.interpolate(images[:count].float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return small.clamp(0, 255).byte().permute(0, 2, 3, 1).reshape(-1, side, 3).numpy().reshape(len(small), side, side, 3) \
        .transpose(1, 0, 2, 3).reshape(side, len(small) * side, 3).copy()


def _full(model, scan, config, preprocess, stop, started):
    labels = list(scan.classes)
    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        replace_head(model, len(labels))
    freeze = apply_freeze(model, config.freeze)
    model.to(device).to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    train_set = ImageDataset(scan.train, preprocess, build_transform(config.augment, preprocess) if config.augment.active else None,
                             seed=config.seed)
    val_loader = make_loader(ImageDataset(scan.val, preprocess), config.batch_size, workers=config.workers)
    history, best, best_key, cancelled, last = _history(), None, None, False, None
    batches = -(-len(scan.train) // config.batch_size)
    for epoch in range(config.epochs):
        train_set.epoch = epoch
        loader = make_loader(train_set, config.batch_size, shuffle=True, seed=config.seed + epoch, workers=config.workers)
        set_train_mode(model)
        loss_sum = correct = seen = 0.0
        grid = None
        for b, (images, targets, _, errs) in enumerate(loader):
            keep = torch.tensor([not e for e in errs])
            images, targets = images[keep], targets[keep]
            if len(targets):
                if grid is None:
                    grid = _grid(images)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(config.seed * 7919 + epoch * 1009 + b)  # dropout etc.: reproducible
                    logits = model(normalize(images, preprocess, device))
                    loss = F.cross_entropy(logits, targets.to(device))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                loss_sum += float(loss.detach()) * len(targets)
                correct += float((logits.argmax(1).cpu() == targets).sum())
                seen += len(targets)
            fraction = (epoch * batches + b + 1) / (config.epochs * batches)
            last = TrainProgress("train", epoch + 1, config.epochs, b + 1, batches, fraction, _eta(started, fraction),
                                 time.perf_counter() - started, loss_sum / max(seen, 1), correct / max(seen, 1),
                                 history["val_loss"][-1] if history["val_loss"] else None,
                                 history["val_acc"][-1] if history["val_acc"] else None, _copy(history), grid)
            yield last
            if stop():
                cancelled = True
                break
        if cancelled and best is not None:
            break
        vlogits, vtargets = _predict(model, val_loader, preprocess, device)
        ev = evaluate_logits(vlogits, vtargets, labels)
        _record(history, loss_sum / max(seen, 1), correct / max(seen, 1), ev.loss, ev.accuracy)
        key = (ev.accuracy, -ev.loss)
        if best_key is None or key > best_key:
            best_key, best = key, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        last = replace(last, val_loss=ev.loss, val_acc=ev.accuracy, history=_copy(history))
        yield last
        if cancelled:
            break
    model.load_state_dict(best)
    model.eval()
    vlogits, vtargets = _predict(model, val_loader, preprocess, device)
    model.to(memory_format=torch.contiguous_format)
    return model, evaluate_logits(vlogits, vtargets, labels, [s.path for s in scan.val]), history, freeze, cancelled, "full", last


@torch.no_grad()
def _predict(model, loader, preprocess, device):
    model.eval()
    logits, targets = [], []
    for images, t, _, _ in loader:
        logits.append(model(normalize(images, preprocess, device)).float().cpu())
        targets.append(t)
    return torch.cat(logits), torch.cat(targets)
