"""The fast path: backbone features of every image once, then a linear head on them.

Backbone frozen and no augmentation: features of each training image *and its mirror image* (an
extra sample, same label) are extracted once (:mod:`.features`, ONNX Runtime when available),
standardised, and an L2-regularised logistic-regression head is fitted with L-BFGS; the L2
strength is chosen by 5-fold cross-validation on the *training* split only (an image and its
mirror always in the same fold). The validation split is only ever evaluated, never used to
choose anything; it is evaluated as the saved model predicts (``LoadedModel.class_scores``): with
``mirror_test``, on the image and its mirror image, log-softmax averaged (+0.5 points on the
clothing set's 40 resampled splits, for 1.4× the validation forward). The standardisation is folded
into the returned weights. Where the model allows, the features are multi-layer (:mod:`..taps`).
``head="adamw"`` trains the head with mini-batch AdamW instead.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import mirror_scores
from ..preprocess import Preprocess
from .evaluate import Evaluation, evaluate_logits
from .features import extract_features
from .head_fit import choose_l2, fit_logistic, single_thread
from .scan import ScanResult
from .train_types import TrainConfig, TrainProgress


def eta(started: float, fraction: float) -> float | None:
    elapsed = time.perf_counter() - started
    return elapsed / fraction * (1 - fraction) if fraction > 0.02 else None


def new_history() -> dict[str, list[float]]:
    return {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}


@dataclass
class HeadFit:
    """A fitted head in the backbone's own feature space (standardisation folded in)."""

    weight: torch.Tensor  # (classes, D)
    bias: torch.Tensor  # (classes,)
    evaluation: Evaluation
    history: dict[str, list[float]]
    cancelled: bool
    last: TrainProgress


def fit_head(backbone, scan: ScanResult, config: TrainConfig, preprocess: Preprocess, stop, started: float):
    """Generator: features of every image once (yielding progress), then the head; returns a :class:`HeadFit`.
    ``backbone``: (N, 3, S, S) normalised float → (N, D), with ``kind`` and ``device`` attributes."""
    labels = list(scan.classes)
    total = len(scan.train) + len(scan.val)
    # ONNX Runtime already keeps every core busy: a decode process only competes with it (measured)
    workers = config.workers if config.workers is not None else 0 if backbone.kind == "onnx" else None
    states = {}
    done_before = 0
    for split in ("train", "val"):
        samples = getattr(scan, split)
        for done, state in extract_features(backbone, samples, preprocess, batch_size=max(config.batch_size, 32),
                                            workers=workers,
                                            mirror=_mirror(config, split)):
            fraction = 0.9 * (done_before + done) / total
            yield TrainProgress("features", 0, config.epochs, done_before + done, total, fraction, eta(started, fraction),
                                time.perf_counter() - started, message=f"{split} features ({backbone.kind})")
            states[split] = state
            if stop():
                break
        done_before += len(samples)
        if stop():
            break
    history = new_history()
    if "val" not in states or "features" not in states["val"]:  # cancelled before every feature was in
        evaluation = evaluate_logits(torch.zeros(0, len(labels)), torch.zeros(0), labels)
        return HeadFit(torch.zeros(0), torch.zeros(0), evaluation, history, True,
                       TrainProgress("cancelled", 0, config.epochs, 0, 0, 1.0, 0, 0))
    tr, va = states["train"], states["val"]
    xtr, ytr = tr["features"][tr["ok"]], tr["labels"][tr["ok"]]
    xva, yva = va["features"], va["labels"]
    groups = torch.arange(len(xtr))
    if "mirror_features" in tr:  # the mirror image: one more sample, same label, same CV fold
        xtr, ytr, groups = torch.cat([xtr, tr["mirror_features"][tr["ok"]]]), torch.cat([ytr, ytr]), torch.cat([groups, groups])
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    ztr, zva = (xtr - mu) / sd, (xva - mu) / sd
    zmirror = (va["mirror_features"] - mu) / sd if "mirror_features" in va else None

    def val_scores(linear):  # what the saved model predicts (LoadedModel.class_scores)
        return linear(zva) if zmirror is None else mirror_scores(linear(zva), linear(zmirror))

    fit = _lbfgs_head if config.head == "lbfgs" else _adamw_head
    linear, cancelled, last = yield from fit(ztr, ytr, groups, val_scores, yva, len(labels), config, history, stop, started)
    with torch.no_grad():  # fold the standardisation into the head: W' = W / sd, b' = b - W' mu
        weight = linear.weight / sd
        bias = linear.bias - weight @ mu
        vlogits = val_scores(linear)
    paths = [s.path for s in scan.val]
    return HeadFit(weight.detach(), bias.detach(), evaluate_logits(vlogits, yva, labels, paths), history, cancelled, last)


def _mirror(config: TrainConfig, split: str) -> bool:
    """Whether ``split``'s mirror images are extracted too: extra training samples, or the
    validation images' second view (``mirror_test``)."""
    return config.mirror_train if split == "train" else config.mirror_test


def _lbfgs_head(ztr, ytr, groups, val_scores, yva, classes, config, history, stop, started):
    yield TrainProgress("train", 0, config.epochs, 0, 1, 0.9, eta(started, 0.9), time.perf_counter() - started,
                        message="choosing the L2 strength by cross-validation on the training images")
    l2 = config.l2 if config.l2 is not None else choose_l2(ztr, ytr, groups, classes, seed=config.seed)
    updates: list[TrainProgress] = []
    state = {"cancelled": False}

    def on_iteration(linear):
        with torch.no_grad():
            logits, vlogits = linear(ztr), val_scores(linear)
        record(history, float(F.cross_entropy(logits, ytr)), float((logits.argmax(1) == ytr).float().mean()),
                float(F.cross_entropy(vlogits, yva)), float((vlogits.argmax(1) == yva).float().mean()))
        epoch = len(history["train_loss"])
        fraction = 0.95 + 0.05 * epoch / config.epochs
        updates.append(TrainProgress("train", epoch, config.epochs, 1, 1, fraction, eta(started, fraction),
                                     time.perf_counter() - started, history["train_loss"][-1], history["train_acc"][-1],
                                     history["val_loss"][-1], history["val_acc"][-1], copy_history(history),
                                     message=f"L-BFGS, L2 {l2:g} (chosen on train)", unit=config.unit))
        state["cancelled"] = stop()
        return state["cancelled"]

    linear = single_thread(fit_logistic)(ztr, ytr, classes, l2, config.epochs, on_iteration)
    yield from updates  # the fit takes well under a second: progress is replayed, not streamed
    return linear, state["cancelled"], updates[-1] if updates else None


def _adamw_head(ztr, ytr, groups, val_scores, yva, classes, config, history, stop, started):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        linear = nn.Linear(ztr.shape[1], classes)
        nn.init.zeros_(linear.weight), nn.init.zeros_(linear.bias)
        order = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.AdamW(linear.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        cancelled, last = False, None
        for epoch in range(config.epochs):
            loss_sum, correct, vloss, vacc = _head_epoch(linear, opt, ztr, ytr, val_scores, yva, config.batch_size, order)
            record(history, loss_sum / len(ztr), correct / len(ztr), vloss, vacc)
            fraction = 0.9 + 0.1 * (epoch + 1) / config.epochs
            last = TrainProgress("train", epoch + 1, config.epochs, 1, 1, fraction, eta(started, fraction),
                                 time.perf_counter() - started, history["train_loss"][-1], history["train_acc"][-1],
                                 vloss, vacc, copy_history(history))
            yield last
            if stop():
                cancelled = True
                break
    return linear, cancelled, last  # the last epoch's head: the validation split never picks a model


def _head_epoch(linear, opt, ztr, ytr, val_scores, yva, batch_size, order):
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
            vlogits = val_scores(linear)
            return loss_sum, correct, float(F.cross_entropy(vlogits, yva)), float((vlogits.argmax(1) == yva).float().mean())
    finally:
        torch.set_num_threads(threads)


def record(history, tl, ta, vl, va) -> None:
    for key, value in zip(("train_loss", "train_acc", "val_loss", "val_acc"), (tl, ta, vl, va)):
        history[key].append(float(value))


def copy_history(history):
    return {k: list(v) for k, v in history.items()}
