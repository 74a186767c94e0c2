"""The evidence behind the fast path's head: resampled splits, paired, not one split.

    python tests/bench/bench_head_choice.py [DATA_DIR] [--splits 40]

Every image of DATA_DIR (train/ and val/ pooled) and its mirror image go once through the shipped,
tapped backbone (pooled bn2 1280 | blocks.4 112 means, 112 log std | blocks.5 192 means, 192 log std).
Then, on ``--splits`` random stratified splits of the same size as the folder's own, heads are
fitted as the fast path fits them on a fixed feature set (training mirrors as extra samples,
standardised, L2 chosen by 5-fold CV log-loss on the training split over the grid 0.03…1, L-BFGS)
and scored on the held-out split:

* ``last_layer``: bn2's features only (the first default);
* ``taps``: plus blocks.4's and blocks.5's channel means (core.taps, ``pool="mean"``);
* ``mirror``: bn2's features, each held-out image judged with its mirror image (log-softmax mean);
* ``taps+mirror``: both;
* ``taps+logstd+mirror``: also the stages' log standard deviations (``pool="mean+logstd"``; the
  fast path chooses between this and ``taps+mirror`` by the same CV, ``bench_head_recipes.py``).

Prints one JSON line per recipe: mean accuracy, and the paired difference to ``last_layer``
(mean ± standard error, splits won / lost).
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
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "clothing-longsleeve-outwear")
LAST_LAYER = 1280  # bn2's pooled features come first in the tapped backbone's output


def features(data: str):
    """(features, mirror features, labels, validation count per class) of every image in ``data``."""
    import torch

    from convviz.core.finetune import TrainConfig, scan_folder
    from convviz.core.finetune.bundled_fast import prepare
    from convviz.core.finetune.backend import choose_backend
    from convviz.core.finetune.features import extract_features

    network = prepare(TrainConfig())
    if network is None:
        raise SystemExit("the shipped graph is not usable here (onnxruntime missing?)")
    backbone = choose_backend(network)
    scan = scan_folder(data)
    samples = scan.train + scan.val
    *_, (_, state) = extract_features(backbone, samples, network.preprocess, batch_size=32, mirror=True, workers=0)
    val_per_class = min(scan.counts("val").values())
    return (state["features"], state["mirror_features"], torch.tensor([s.label for s in samples]), val_per_class,
            network.mean_columns())


def splits(labels, val_per_class: int, count: int):
    import torch

    for seed in range(count):
        generator = torch.Generator().manual_seed(seed)
        train, val = [], []
        for c in torch.unique(labels).tolist():
            idx = (labels == c).nonzero().flatten()
            idx = idx[torch.randperm(len(idx), generator=generator)]
            val += idx[:val_per_class].tolist()
            train += idx[val_per_class:].tolist()
        yield torch.tensor(train), torch.tensor(val)


def accuracy(f, m, y, train, val, columns: list[int], mirror: bool) -> float:
    """The fast path's head (core.finetune.head_fit) on the feature ``columns``."""
    import torch

    from convviz.core.finetune.head_fit import choose_l2, fit_logistic, single_thread
    from convviz.core.model.loading import mirror_scores

    f, m = f[:, columns], m[:, columns]
    x = torch.cat([f[train], m[train]])
    labels = torch.cat([y[train], y[train]])
    groups = torch.cat([torch.arange(len(train))] * 2)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    classes = int(y.max()) + 1
    l2 = choose_l2(z, labels, groups, classes)
    head = single_thread(fit_logistic)(z, labels, classes, l2)
    with torch.no_grad():
        scores = head((f[val] - mu) / sd)
        if mirror:
            scores = mirror_scores(scores, head((m[val] - mu) / sd))
    return float((scores.argmax(1) == y[val]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--splits", type=int, default=40)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    f, m, y, val_per_class, means = features(args.data)
    last, every = list(range(LAST_LAYER)), list(range(f.shape[1]))
    recipes = {"last_layer": (last, False), "taps": (means, False), "mirror": (last, True), "taps+mirror": (means, True),
               "taps+logstd+mirror": (every, True)}
    scores = {name: [] for name in recipes}
    for train, val in splits(y, val_per_class, args.splits):
        for name, (width, mirror) in recipes.items():
            scores[name].append(accuracy(f, m, y, train, val, width, mirror))
    reference = scores["last_layer"]
    for name, values in scores.items():
        diff = [a - b for a, b in zip(values, reference)]
        print(json.dumps({
            "figure": "head_choice", "data": os.path.basename(os.path.normpath(args.data)), "recipe": name,
            "splits": args.splits, "val_per_class": val_per_class, "features": len(recipes[name][0]),
            "mean_accuracy": round(statistics.mean(values), 4), "stdev": round(statistics.stdev(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4),
            "paired_vs_last_layer": round(statistics.mean(diff), 4),
            "paired_se": round(statistics.stdev(diff) / math.sqrt(len(diff)), 4) if len(diff) > 1 else None,
            "won": sum(d > 0 for d in diff), "lost": sum(d < 0 for d in diff)}), flush=True)


if __name__ == "__main__":
    main()
