"""Candidate fast-path recipes beyond the default, on resampled splits, paired (issue #15).

    python tests/bench/bench_head_recipes.py [DATA_DIR] [--splits 40] [--recipes NAME,NAME]

Every image of DATA_DIR (train/ and val/ pooled) goes through the shipped, tapped backbone (as
``bench_head_choice.py``) in several views, each with its mirror image: ``c`` the default input
(whole centred square), ``a``/``b`` the squares at either end of the long side, ``sh``/``sl``
the square moved by ±10 % of its side, ``z90``/``z80`` a centred square of 90 / 80 % of the
short side, ``full`` the whole photo squashed to a square, and ``rrc0``…``rrc3`` four seeded
random-resized crops (area 35–100 % of the photo, aspect 3/4–4/3; a fixed draw per image).
Extra views are *training samples only* (same label, same CV group as their image); every
held-out image is judged as the saved model judges it: itself and its mirror, log-softmax mean.

Heads as the fast path fits them (standardised, L2-regularised logistic regression, L-BFGS), on the
backbone's pooled bn2 and the tapped stages' channel means (``pool="mean"``), the L2 strength chosen
by 5-fold CV on the training split by accuracy (``acc``, grid 0.001…0.1: the fast path's criterion
when these recipes were compared, the reference recipe ``default``) or by held-out log-loss (``ll``,
grid 0.03…1: :func:`~convviz.core.finetune.head_fit.choose_l2`, as recipe ``cv_logloss`` showed
+0.18 ± 0.06 points on clothing). ``logstd``: the stages' log standard deviations too
(``pool="mean+logstd"``, grid 0.1…1); ``chosen``: the same CV log-loss picks one of the two
feature sets and its L2 per split (:func:`~convviz.core.finetune.head_fit.choose_columns`: the
fast path's head today).
Prints one JSON line per recipe: mean accuracy and the paired difference to ``default`` (mean ±
standard error, splits won / lost).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout, not the installed one
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_head_choice import DEFAULT_DATA, splits  # noqa: E402

ACC_GRID, LL_GRID = (1e-3, 1e-2, 1e-1), (0.03, 0.1, 0.3, 1.0)
RRC = tuple(f"rrc{k}" for k in range(4))
#: name → (extra training views, CV criterion)
RECIPES = {
    "default": ((), "acc"),
    **{f"+{v}": ((v,), "acc") for v in RRC},
    "+rrc0+rrc1": (("rrc0", "rrc1"), "acc"),
    "+rrc0..3": (RRC, "acc"),
    "+a+b": (("a", "b"), "acc"),
    "+sh+sl": (("sh", "sl"), "acc"),
    "+z90": (("z90",), "acc"),
    "+z80": (("z80",), "acc"),
    "+full": (("full",), "acc"),
    "cv_logloss": ((), "ll"),
    "logstd": ((), "ll+logstd"),
    "chosen": ((), "chosen"),
    **{f"cv_logloss+{v}": ((v,), "ll") for v in RRC},
}


def boxes(w: int, h: int, index: int) -> dict[str, tuple[float, float, float, float]]:
    """Every view's crop box (left, top, right, bottom) in a ``w`` × ``h`` photo (``index``: the crops' seed)."""
    import numpy as np

    s, long, landscape = min(w, h), max(w, h), w >= h

    def square(offset: float, side: float):
        across = (s - side) / 2
        return (offset, across, offset + side, across + side) if landscape else (across, offset, across + side, offset + side)

    views = {"c": square((long - s) / 2, s), "a": square(0, s), "b": square(long - s, s),
             "sh": square(min(long - s, (long - s) / 2 + 0.1 * s), s), "sl": square(max(0, (long - s) / 2 - 0.1 * s), s),
             "z90": square((long - 0.9 * s) / 2, 0.9 * s), "z80": square((long - 0.8 * s) / 2, 0.8 * s), "full": (0, 0, w, h)}
    rng = np.random.default_rng(1000 + index)
    for name in RRC:
        cw = ch = s
        for _ in range(10):
            area, ratio = w * h * rng.uniform(0.35, 1.0), math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            if math.sqrt(area * ratio) <= w and math.sqrt(area / ratio) <= h:
                cw, ch = math.sqrt(area * ratio), math.sqrt(area / ratio)
                break
        x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        views[name] = (x0, y0, x0 + cw, y0 + ch)
    return views


def view_features(data: str):
    """({view: features}, {view: mirror features}, labels, validation count per class)."""
    import numpy as np
    import torch
    from PIL import Image

    from convviz.core.finetune import TrainConfig, scan_folder
    from convviz.core.finetune.backend import choose_backend
    from convviz.core.finetune.bundled_fast import prepare
    from convviz.core.finetune.features import decode_rgb, normalize

    network = prepare(TrainConfig())
    if network is None:
        raise SystemExit("the shipped graph is not usable here (onnxruntime missing?)")
    backbone, pp = choose_backend(network), network.preprocess
    resample = Image.BICUBIC if pp.interpolation == "bicubic" else Image.BILINEAR
    scan = scan_folder(data)
    samples = scan.train + scan.val
    feats: dict[str, list] = {}
    for start in range(0, len(samples), 8):
        images: dict[str, list] = {}
        for index, sample in enumerate(samples[start:start + 8], start):
            img = Image.fromarray(np.ascontiguousarray(decode_rgb(sample.path, 2 * pp.input_size)[..., :3]))
            for name, box in boxes(img.width, img.height, index).items():
                images.setdefault(name, []).append(np.asarray(img.resize((pp.input_size,) * 2, resample, box=box)))
        for name, arrays in images.items():
            x = normalize(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2), pp)
            out = backbone(torch.cat([x, x.flip(3)])).float()
            feats.setdefault(name, []).append(out[:len(x)])
            feats.setdefault(name + "_m", []).append(out[len(x):])
    stacked = {k: torch.cat(v) for k, v in feats.items()}
    labels = torch.tensor([s.label for s in samples])
    val_per_class = min(scan.counts("val").values()) if scan.val else max(1, round(0.2 * len(samples) / len(scan.classes)))
    return stacked, labels, val_per_class, network.mean_columns()


def accuracy(feats, y, train, val, extra: tuple[str, ...], criterion: str, means: list[int]) -> float:
    """The fast path's head on the training views; held-out images judged with their mirrors.
    ``means``: the columns without the tapped stages' log standard deviations."""
    import torch

    from convviz.core.finetune.head_fit import LOGSTD_L2_GRID, choose_columns, choose_l2, fit_logistic, single_thread, standardizer
    from convviz.core.model.loading import mirror_scores

    views = [v for name in ("c", *extra) for v in (name, name + "_m")]
    x = torch.cat([feats[v][train] for v in views])
    labels, groups = y[train].repeat(len(views)), torch.arange(len(train)).repeat(len(views))
    mu, sd = standardizer(x)
    z = (x - mu) / sd
    classes = int(y.max()) + 1
    columns = means
    if criterion == "acc":
        l2 = cv_accuracy(z[:, means], labels, groups, classes)
    elif criterion == "ll":
        l2 = choose_l2(z[:, means], labels, groups, classes, grid=LL_GRID)
    elif criterion == "ll+logstd":
        columns, l2 = slice(None), choose_l2(z, labels, groups, classes, grid=LOGSTD_L2_GRID)
    else:
        name, l2 = choose_columns(z, labels, groups, classes, {"logstd": (None, LOGSTD_L2_GRID), "mean": (means, LL_GRID)})
        columns = slice(None) if name == "logstd" else means
    head = single_thread(fit_logistic)(z[:, columns], labels, classes, l2)
    with torch.no_grad():
        mu, sd = mu[columns], sd[columns]
        scores = mirror_scores(head((feats["c"][val][:, columns] - mu) / sd), head((feats["c_m"][val][:, columns] - mu) / sd))
    return float((scores.argmax(1) == y[val]).float().mean())


def cv_accuracy(z, y, groups, classes: int, grid=ACC_GRID, folds: int = 5) -> float:
    """The L2 strength with the best 5-fold held-out accuracy (groups kept in one fold; ties to the
    stronger L2): the fast path's criterion before it took log-loss (:func:`choose_l2`)."""
    import torch

    from convviz.core.finetune.head_fit import fit_logistic, single_thread

    ids = torch.unique(groups)
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))]
    fold_of = torch.empty(int(groups.max()) + 1, dtype=torch.long)
    fold_of[perm] = torch.arange(len(perm)) % folds
    fold, scores = fold_of[groups], []
    for l2 in grid:
        correct = 0.0
        for k in range(folds):
            tr, te = fold != k, fold == k
            mu, sd = z[tr].mean(0), z[tr].std(0) + 1e-6
            head = single_thread(fit_logistic)((z[tr] - mu) / sd, y[tr], classes, l2)
            with torch.no_grad():
                correct += float((head((z[te] - mu) / sd).argmax(1) == y[te]).sum())
        scores.append((correct, l2))
    return max(scores)[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--splits", type=int, default=40)
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names (default: all)")
    args = parser.parse_args()
    names = ["default"] + [n for n in args.recipes.split(",") if n in RECIPES and n != "default"]
    import torch

    torch.set_num_threads(2)
    feats, y, val_per_class, means = view_features(args.data)
    torch.set_num_threads(1)
    scores: dict[str, list[float]] = {n: [] for n in names}
    for train, val in splits(y, val_per_class, args.splits):
        for name in names:
            scores[name].append(accuracy(feats, y, train, val, *RECIPES[name], means))
    for name, values in scores.items():
        diff = [a - b for a, b in zip(values, scores["default"])]
        print(json.dumps({
            "figure": "head_recipes", "data": os.path.basename(os.path.normpath(args.data)), "recipe": name,
            "train_views": ["c", *RECIPES[name][0]], "cv": RECIPES[name][1], "splits": args.splits,
            "mean_accuracy": round(statistics.mean(values), 4),
            "paired_vs_default": round(statistics.mean(diff), 4),
            "paired_se": round(statistics.stdev(diff) / math.sqrt(len(diff)), 4) if len(diff) > 1 else None,
            "won": sum(d > 1e-9 for d in diff), "lost": sum(d < -1e-9 for d in diff)}), flush=True)


if __name__ == "__main__":
    main()
