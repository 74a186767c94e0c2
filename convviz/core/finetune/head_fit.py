"""The fast path's head: L2-regularised multinomial logistic regression on standardised features.

Fitted full-batch with L-BFGS (SciPy) from zeros (deterministic); the L2 strength is the one with the
least k-fold cross-validated log-loss on the training samples only, with samples that share a group
id (an image and its mirror image) kept in one fold so a fold never tests on the twin of a training
sample. (Log-loss rather than accuracy: over 40 resampled splits of the clothing set, +0.18 ± 0.06
points, 10 splits won and 1 lost; cats-dogs +0.21; ``tests/bench/bench_head_recipes.py``.) With the
tapped stages' log standard deviations in the features (:mod:`..model.taps`), 0.03 was never better
than 0.1 and 3 never chosen: that head's grid is 0.1…1 (:data:`LOGSTD_L2_GRID`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

FLAT = 1e-2  #: a feature whose training spread is under this share of the median feature's counts as constant
L2_GRID = (0.03, 0.1, 0.3, 1.0)  # candidates for the L2 strength (mean loss + l2 * |W|²)
LOGSTD_L2_GRID = (0.1, 0.3, 1.0)  # the same for a head that also reads the tapped stages' log std (core.model.taps)
CV_FOLDS = 5


def standardizer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, spread) of each column of the training samples ``x``, to standardise by. A column that is
    (nearly) constant on them (spread under :data:`FLAT` × the median column's, e.g. a channel dead on
    every training photo) gets an infinite spread: it carries nothing to learn from, and dividing by
    its tiny spread would blow up a new image's value (×10⁶ seen on a 6-photo folder), so it reads as
    0 for every image and its weight stays 0."""
    mu, sd = x.mean(0), x.std(0)
    return mu, torch.where(sd > FLAT * sd.median(), sd, torch.inf)


def single_thread(fn):
    """Run ``fn`` with one torch thread and one BLAS thread (SciPy's OpenBLAS, via threadpoolctl):
    ops this small ran ~50× (torch) and ~15× (L-BFGS-B's BLAS) slower with 2 threads (measured)."""
    def wrapped(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(1, user_api="blas"):
                return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapped


def fit_logistic(z: torch.Tensor, y: torch.Tensor, classes: int, l2: float, iterations: int = 100,
                 on_iteration: Callable[[nn.Linear], bool] | None = None) -> nn.Linear:
    """Multinomial logistic regression (mean cross-entropy + ``l2`` · |W|², bias free) by SciPy's
    L-BFGS-B from zeros, in float64. ``on_iteration(linear)`` after each iteration; returning True
    stops early. (Not ``torch.optim.LBFGS``: the first optimizer a process makes imports
    ``torch._dynamo``, 1.2 s here, against 0.25 s for ``scipy.optimize``; measured.)"""
    from scipy.optimize import minimize

    x = z.detach().double().cpu().contiguous()
    onehot = torch.eye(classes, dtype=torch.float64)[y.cpu()]
    n, d = x.shape

    def unpack(params):
        params = torch.from_numpy(params)
        return params[:classes * d].view(classes, d), params[classes * d:]

    def loss_and_grad(params):  # torch for the arithmetic: numpy's BLAS took 7 ms a call here, torch 0.2
        weight, bias = unpack(params)
        logp = torch.log_softmax(x @ weight.T + bias, 1)
        loss = -(onehot * logp).sum() / n + l2 * (weight * weight).sum()
        g = (logp.exp() - onehot) / n
        return float(loss), torch.cat([(g.T @ x + 2 * l2 * weight).ravel(), g.sum(0)]).numpy()

    def to_linear(params) -> nn.Linear:
        weight, bias = unpack(params)
        linear = nn.Linear(d, classes)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        return linear

    def callback(params):
        if on_iteration(to_linear(params)):
            raise StopIteration  # SciPy ≥ 1.11 ends the run and returns the current point

    result = minimize(loss_and_grad, np.zeros(classes * d + classes), jac=True, method="L-BFGS-B",
                      callback=callback if on_iteration else None,
                      options={"maxiter": iterations, "maxcor": 10, "gtol": 1e-6, "ftol": 1e-10})
    return to_linear(result.x)


@single_thread
def choose_l2(z: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, classes: int, grid=L2_GRID,
              folds: int = CV_FOLDS, seed: int = 0, iterations: int = 100) -> float:
    """The L2 strength from ``grid`` with the least ``folds``-fold cross-validated log-loss (summed
    cross-entropy of the held-out samples) on (z, y); samples sharing a ``groups`` id stay in one
    fold; ties go to the stronger L2."""
    return choose_columns(z, y, groups, classes, {"all": (None, grid)}, folds, seed, iterations)[1]


@single_thread
def choose_columns(z: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, classes: int,
                   candidates: dict[str, tuple[list[int] | None, tuple[float, ...]]], folds: int = CV_FOLDS,
                   seed: int = 0, iterations: int = 100) -> tuple[str, float]:
    """(name, L2) of the candidate feature set and strength with the least cross-validated log-loss
    (as :func:`choose_l2`, the same folds for every candidate). ``candidates``: name → (columns of
    ``z``, None for all; its L2 grid); ties go to the earlier candidate, then the stronger L2."""
    best = None
    for rank, (name, (columns, grid)) in enumerate(candidates.items()):
        zc = z if columns is None else z[:, columns]
        for loss, l2 in zip(cv_losses(zc, y, groups, classes, grid, folds, seed, iterations), grid):
            if best is None or (loss, rank, -l2) < best[0]:
                best = ((loss, rank, -l2), name, l2)
    return best[1], best[2]


def cv_losses(z: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, classes: int, grid=L2_GRID,
              folds: int = CV_FOLDS, seed: int = 0, iterations: int = 100) -> list[float]:
    """Each L2 strength's summed held-out cross-entropy over ``folds`` folds of (z, y), each fold
    standardised by its training part; samples sharing a ``groups`` id stay in one fold."""
    ids = torch.unique(groups)
    folds = max(2, min(folds, len(ids)))
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    fold_of = torch.empty(int(groups.max()) + 1, dtype=torch.long)
    fold_of[perm] = torch.arange(len(perm)) % folds
    fold = fold_of[groups]
    losses = []
    for l2 in grid:
        loss = 0.0
        for k in range(folds):
            train, test = fold != k, fold == k
            if len(torch.unique(y[train])) < classes:
                continue
            with torch.no_grad():
                mu, sd = standardizer(z[train])
            linear = fit_logistic((z[train] - mu) / sd, y[train], classes, l2, iterations)
            with torch.no_grad():
                loss += float(nn.functional.cross_entropy(linear((z[test] - mu) / sd), y[test], reduction="sum"))
        losses.append(loss)
    return losses
