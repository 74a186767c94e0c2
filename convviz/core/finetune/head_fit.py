"""The fast path's head: L2-regularised multinomial logistic regression on standardised features.

Fitted full-batch with L-BFGS from zeros (deterministic); the L2 strength is chosen by k-fold
cross-validation on the training samples only, with samples that share a group id (an image and
its mirror image) kept in one fold so a fold never tests on the twin of a training sample.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

L2_GRID = (1e-3, 1e-2, 1e-1)  # candidates for the L2 strength (mean loss + l2 * |W|²)
CV_FOLDS = 5


def single_thread(fn):
    """Ops this small run ~50× slower with 2 OpenMP threads on a busy machine (measured)."""
    def wrapped(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapped


def fit_logistic(z: torch.Tensor, y: torch.Tensor, classes: int, l2: float, iterations: int = 100,
                 on_iteration: Callable[[nn.Linear], bool] | None = None) -> nn.Linear:
    """Multinomial logistic regression (mean cross-entropy + ``l2`` · |W|²) by L-BFGS, from zeros.
    ``on_iteration(linear)`` after each iteration; returning True stops early."""
    linear = nn.Linear(z.shape[1], classes)
    nn.init.zeros_(linear.weight), nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(linear.parameters(), lr=1, max_iter=1 if on_iteration else iterations, max_eval=25,
                            history_size=10, tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(z), y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    for _ in range(iterations if on_iteration else 1):
        opt.step(closure)
        if on_iteration and on_iteration(linear):
            break
    return linear


@single_thread
def choose_l2(z: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, classes: int, grid=L2_GRID,
              folds: int = CV_FOLDS, seed: int = 0, iterations: int = 100) -> float:
    """The L2 strength from ``grid`` with the best ``folds``-fold cross-validated accuracy on
    (z, y); samples sharing a ``groups`` id stay in one fold; ties go to the stronger L2."""
    ids = torch.unique(groups)
    folds = max(2, min(folds, len(ids)))
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    fold_of = torch.empty(int(groups.max()) + 1, dtype=torch.long)
    fold_of[perm] = torch.arange(len(perm)) % folds
    fold = fold_of[groups]
    scores = []
    for l2 in grid:
        correct = 0.0
        for k in range(folds):
            train, test = fold != k, fold == k
            if len(torch.unique(y[train])) < classes:
                continue
            with torch.no_grad():
                mu, sd = z[train].mean(0), z[train].std(0) + 1e-6
            linear = fit_logistic((z[train] - mu) / sd, y[train], classes, l2, iterations)
            with torch.no_grad():
                correct += float((linear((z[test] - mu) / sd).argmax(1) == y[test]).sum())
        scores.append((correct, l2))
    return max(scores)[1]
