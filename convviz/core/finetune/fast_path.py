"""The fast path: backbone features of every image once, then a linear head on them.

Backbone frozen and no augmentation: features of each training image *and its mirror image* (an
extra sample, same label) are extracted once (:mod:`.features`, through the backend
:func:`~.backend.choose_backend` picks), standardised, and an L2-regularised logistic-regression
head is fitted with L-BFGS; the L2 strength is chosen by 5-fold cross-validation on the *training*
split only (an image and its mirror always in the same fold). The validation split is only ever
evaluated, never used to choose anything; it is evaluated as the saved model predicts
(``LoadedModel.class_scores``): with ``mirror_test``, on the image and its mirror image,
log-softmax averaged (+0.5 points on the clothing set's 40 resampled splits, for 1.4× the
validation forward). The standardisation is folded into the returned weights. Where the model
allows, the features are multi-layer (:mod:`..taps`); when its tapped stages are pooled as means and
log standard deviations, the same cross-validation also chooses whether the head reads the log
standard deviations (on the clothing set's 40 resampled splits +0.38 ± 0.12 points; on cats-dogs-60
they cost 0.6 points, and the cross-validation drops them there in all 40; ``bench_head_recipes.py``).
``head="adamw"`` trains the head with mini-batch AdamW instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model.loading import mirror_scores
from .backend import FeatureBackend, choose_backend
from .evaluate import Evaluation, evaluate_logits
from .features import extract_features
from .head_fit import L2_GRID, LOGSTD_L2_GRID, choose_columns, choose_l2, fit_logistic, single_thread, standardizer
from .train_types import Outcome, Run, TrainProgress


@dataclass(frozen=True)
class HeadFit:
    """A fitted head in the backbone's own feature space (standardisation folded in); empty
    ``weight`` when the run was cancelled before every feature was in."""

    weight: torch.Tensor  # (classes, D)
    bias: torch.Tensor  # (classes,)
    evaluation: Evaluation
    history: dict[str, list[float]]
    cancelled: bool
    last: TrainProgress | None
    pool: str | None = None  #: how the head's features pool the tapped stages, where the fit chose it


@dataclass(frozen=True)
class _Split:
    """Standardised features: training samples (mirrors included), validation images and their mirrors."""

    ztr: torch.Tensor
    ytr: torch.Tensor
    groups: torch.Tensor  # an image and its mirror share a CV group
    zva: torch.Tensor
    yva: torch.Tensor
    zmirror: torch.Tensor | None

    def columns(self, columns: list[int]) -> "_Split":
        """The same samples with only ``columns`` of their features."""
        return _Split(ztr=self.ztr[:, columns], ytr=self.ytr, groups=self.groups, zva=self.zva[:, columns], yva=self.yva,
                      zmirror=None if self.zmirror is None else self.zmirror[:, columns])

    def val_scores(self, linear: nn.Module) -> torch.Tensor:
        """What the saved model predicts on the validation images (``LoadedModel.class_scores``)."""
        return linear(self.zva) if self.zmirror is None else mirror_scores(linear(self.zva), linear(self.zmirror))


def fast(run: Run):
    """Generator: the fast path of ``run``; returns its :class:`~.train_types.Outcome`."""
    config = run.config
    backend = choose_backend(run.network, device=config.device, graph=config.graph, on_status=run.on_status)
    fit = yield from fit_head(backend, run)
    trained = run.network.pooled(fit.pool or run.network.pool).with_head(fit.weight, fit.bias, len(run.labels), config.seed)
    return Outcome(trained=trained, evaluation=fit.evaluation, history=fit.history, cancelled=fit.cancelled,
                   backbone=backend.kind, last=fit.last, pool=fit.pool)


def fit_head(backend: FeatureBackend, run: Run):
    """Generator: features of every image once (yielding progress), then the head; returns a :class:`HeadFit`."""
    config, scan, labels = run.config, run.scan, run.labels
    preprocess = run.network.preprocess
    total = len(scan.train) + len(scan.val)
    # ONNX Runtime already keeps every core busy: overlapping decoding only competes with it (2 cores: a decode
    # process 1.2× the serial time, ONNX Runtime's run_async 1.48×; tests/bench/bench_decode_overlap.py)
    workers = config.workers if config.workers is not None else 0 if backend.kind == "onnx" else None
    states, done_before = {}, 0
    for split in ("train", "val"):
        samples = getattr(scan, split)
        mirror = config.mirror_train if split == "train" else config.mirror_test
        for done, state in extract_features(backend, samples, preprocess, batch_size=max(config.batch_size, 32),
                                            workers=workers, mirror=mirror):
            yield run.progress("features", 0.9 * (done_before + done) / total, epochs=config.epochs,
                               batch=done_before + done, batches=total, message=f"{split} features ({backend.kind})")
            states[split] = state
            if run.stop():
                break
        done_before += len(samples)
        if run.stop():
            break
    history = new_history()
    if "val" not in states or "features" not in states["val"]:  # cancelled before every feature was in
        evaluation = evaluate_logits(torch.zeros(0, len(labels)), torch.zeros(0), labels)
        return HeadFit(weight=torch.zeros(0), bias=torch.zeros(0), evaluation=evaluation, history=history, cancelled=True,
                       last=TrainProgress(stage="cancelled", epochs=config.epochs, fraction=1.0))
    split, mu, sd = _standardised(states["train"], states["val"])
    pool = None
    if config.head == "lbfgs":
        yield run.progress("train", 0.9, epochs=config.epochs, batch=0, batches=1,
                           message="choosing the L2 strength by cross-validation on the training images")
        pool, l2 = _choose(split, run, len(labels))
        if pool != run.network.pool:
            columns = run.network.mean_columns()
            split, mu, sd = split.columns(columns), mu[columns], sd[columns]
        linear, cancelled, last = yield from _lbfgs_head(split, len(labels), run, history, l2, pool)
    else:
        linear, cancelled, last = yield from _adamw_head(split, len(labels), run, history)
    with torch.no_grad():  # fold the standardisation into the head: W' = W / sd, b' = b - W' mu
        weight = linear.weight / sd
        bias = linear.bias - weight @ mu
        vlogits = split.val_scores(linear)
    paths = [s.path for s in scan.val]
    return HeadFit(weight=weight.detach(), bias=bias.detach(), evaluation=evaluate_logits(vlogits, split.yva, labels, paths),
                   history=history, cancelled=cancelled, last=last, pool=pool)


def _choose(split: _Split, run: Run, classes: int) -> tuple[str, float]:
    """(pool, L2) of the head: ``config.l2`` or cross-validation's choice, and for a network whose taps
    are pooled as means and log standard deviations, whether the head reads the latter (else ``"mean"``)."""
    config, network = run.config, run.network
    if config.l2 is not None:
        return network.pool, config.l2
    if not network.taps or network.pool == "mean":
        return network.pool, choose_l2(split.ztr, split.ytr, split.groups, classes, seed=config.seed)
    candidates = {network.pool: (None, LOGSTD_L2_GRID), "mean": (network.mean_columns(), L2_GRID)}
    return choose_columns(split.ztr, split.ytr, split.groups, classes, candidates, seed=config.seed)


def _standardised(tr: dict, va: dict) -> tuple[_Split, torch.Tensor, torch.Tensor]:
    """The training samples (each image's mirror an extra sample, same label, same CV group) and the
    validation images, standardised by the training features' mean and deviation (also returned)."""
    xtr, ytr = tr["features"][tr["ok"]], tr["labels"][tr["ok"]]
    groups = torch.arange(len(xtr))
    if "mirror_features" in tr:
        xtr, ytr, groups = torch.cat([xtr, tr["mirror_features"][tr["ok"]]]), torch.cat([ytr, ytr]), torch.cat([groups, groups])
    mu, sd = standardizer(xtr)
    zmirror = (va["mirror_features"] - mu) / sd if "mirror_features" in va else None
    return _Split(ztr=(xtr - mu) / sd, ytr=ytr, groups=groups, zva=(va["features"] - mu) / sd, yva=va["labels"],
                  zmirror=zmirror), mu, sd


def _lbfgs_head(split: _Split, classes: int, run: Run, history, l2: float, pool: str):
    config = run.config
    chosen = "chosen on train" if config.l2 is None else "set"
    features = f"; stage means{' and log std' if pool != 'mean' else ''}" if run.network.taps else ""
    updates: list[TrainProgress] = []
    stopped = [False]

    def on_iteration(linear):
        _record_epoch(history, linear, split)
        epoch = len(history["train_loss"])
        updates.append(_epoch_progress(run, history, epoch, 0.95 + 0.05 * epoch / config.epochs,
                                       message=f"L-BFGS, L2 {l2:g}{features} ({chosen})", unit=config.unit))
        stopped[0] = run.stop()
        return stopped[0]

    linear = single_thread(fit_logistic)(split.ztr, split.ytr, classes, l2, config.epochs, on_iteration)
    yield from updates  # the fit takes well under a second: progress is replayed, not streamed
    return linear, stopped[0], updates[-1] if updates else None


def _adamw_head(split: _Split, classes: int, run: Run, history):
    config = run.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        linear = nn.Linear(split.ztr.shape[1], classes)
        nn.init.zeros_(linear.weight), nn.init.zeros_(linear.bias)
        order = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.AdamW(linear.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        cancelled, last = False, None
        for epoch in range(config.epochs):
            _head_epoch(linear, opt, split, config.batch_size, order, history)
            last = _epoch_progress(run, history, epoch + 1, 0.9 + 0.1 * (epoch + 1) / config.epochs)
            yield last
            if run.stop():
                cancelled = True
                break
    return linear, cancelled, last  # the last epoch's head: the validation split never picks a model


def _head_epoch(linear, opt, split: _Split, batch_size: int, order, history) -> None:
    """One epoch of the linear head on cached features, recorded in ``history``; single-threaded:
    ops this small run ~50× slower with 2 OpenMP threads on a busy machine (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ztr, ytr = split.ztr, split.ytr
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
        _record_epoch(history, linear, split, loss_sum / len(ztr), correct / len(ztr))
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def _record_epoch(history, linear, split: _Split, train_loss: float | None = None, train_acc: float | None = None) -> None:
    """Append the head's training and validation loss and accuracy (training ones measured now unless given)."""
    if train_loss is None:
        logits = linear(split.ztr)
        train_loss, train_acc = float(F.cross_entropy(logits, split.ytr)), float((logits.argmax(1) == split.ytr).float().mean())
    vlogits = split.val_scores(linear)
    record(history, train_loss, train_acc, float(F.cross_entropy(vlogits, split.yva)),
           float((vlogits.argmax(1) == split.yva).float().mean()))


def _epoch_progress(run: Run, history, epoch: int, fraction: float, **fields) -> TrainProgress:
    return run.progress("train", fraction, epoch=epoch, epochs=run.config.epochs, batch=1, batches=1,
                        train_loss=history["train_loss"][-1], train_acc=history["train_acc"][-1],
                        val_loss=history["val_loss"][-1], val_acc=history["val_acc"][-1], history=copy_history(history),
                        **fields)


def new_history() -> dict[str, list[float]]:
    return {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}


def record(history, tl, ta, vl, va) -> None:
    for key, value in zip(("train_loss", "train_acc", "val_loss", "val_acc"), (tl, ta, vl, va)):
        history[key].append(float(value))


def copy_history(history):
    return {k: list(v) for k, v in history.items()}
