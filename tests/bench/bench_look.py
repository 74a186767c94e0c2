"""Top patches and effective receptive fields against the plain work they stand on, in the same run.

Figures (one JSON line each, medians):
* ``top_patches_vs_raw_forward`` — per layer: images/s of the top-patches pass over a folder
  (default ``../shared/data/cats-dogs-60``: listing and header checks, cache key, decode, forward to
  the layer, running top-9 of every channel; no cache) against a raw batched forward of the whole
  model over the same folder with the same decoding (target: ≥ 0.8×);
* ``erf_unit_vs_forward_backward`` — per layer: one unit's effective field (photo → model input,
  forward to the layer, backward to the input, heat map, 90 % share, spread) against one forward +
  backward of the whole model to its input (target: ≤ 2×).

Runs alternate (raw first, then the other, then the reverse) so drift hits both alike.
Run: ``python tests/bench/bench_look.py [--folder DIR] [--repeats 5] [--model default] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ["CONVVIZ_FEATURE_CACHE"] = "0"  # every pass computes (the cache would make it free)

import torch  # noqa: E402

from convviz.core.finetune.features import ImageDataset, make_loader, normalize  # noqa: E402
from convviz.core.finetune.scan import Sample  # noqa: E402
from convviz.core.images import load_image  # noqa: E402
from convviz.core.capture.layer_table import layer_table  # noqa: E402
from convviz.core.model.loading import load_model  # noqa: E402
from convviz.core.where import erf, top_patches  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDER = os.path.join(HERE, "..", "..", "..", "shared", "data", "cats-dogs-60")
SAMPLE = os.path.join(HERE, "..", "..", "resources", "samples", "cat.jpg")


def raw_forward(loaded, paths, batch_size: int) -> None:
    """Decode + the whole model's forward over ``paths``, batched, as the top-patches pass decodes."""
    dataset = ImageDataset([Sample(p, 0) for p in paths], loaded.preprocess)
    with torch.inference_mode():
        for batch, *_ in make_loader(dataset, batch_size):
            loaded.module(normalize(batch, loaded.preprocess))


def top_pass(loaded, folder: str, layer: str) -> None:
    top_patches._MEMO.clear()
    top_patches.scan_top(loaded, folder, layer, batch_size=top_patches.BATCH_SIZE)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(first, second, repeats: int) -> tuple[list[float], list[float]]:
    a, b = [], []
    for i in range(repeats):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            (a if which == 0 else b).append(timed(first if which == 0 else second))
    return a, b


def forward_backward(module, x: torch.Tensor) -> None:
    x = x.detach().clone().requires_grad_(True)
    logits = module(x)
    torch.autograd.grad(logits[0].max(), x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=FOLDER)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", nargs="+", default=["blocks.2", "blocks.5", "bn2"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier figures on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    size = loaded.preprocess.input_size
    rows = layer_table(loaded.module, (3, size, size))
    paths, _ = top_patches.list_images(args.folder)
    top_pass(loaded, args.folder, args.layers[0])  # warm-up: imports, allocator, page cache
    raw_forward(loaded, paths, top_patches.BATCH_SIZE)
    for layer in args.layers:
        raw, top = alternate(lambda: raw_forward(loaded, paths, top_patches.BATCH_SIZE),
                             lambda: top_pass(loaded, args.folder, layer), args.repeats)
        raw_rate, top_rate = len(paths) / statistics.median(raw), len(paths) / statistics.median(top)
        print(json.dumps({"figure": "top_patches_vs_raw_forward", "model": args.model, "layer": layer,
                          "images": len(paths), "repeats": args.repeats, "raw_images_per_s": round(raw_rate, 2),
                          "top_patches_images_per_s": round(top_rate, 2), "ratio": round(top_rate / raw_rate, 3),
                          "target": ">= 0.8"}), flush=True)
    rgb = load_image(SAMPLE).rgb
    x = loaded.preprocess.to_tensor(rgb)
    for layer in args.layers:
        erf.unit_erf(loaded, rgb, layer, rows=rows)  # warm-up
        base, one = alternate(lambda: forward_backward(loaded.module, x),
                              lambda: erf.unit_erf(loaded, rgb, layer, rows=rows), 3 * args.repeats)
        print(json.dumps({"figure": "erf_unit_vs_forward_backward", "model": args.model, "layer": layer,
                          "repeats": 3 * args.repeats, "forward_backward_ms": round(1000 * statistics.median(base), 1),
                          "erf_ms": round(1000 * statistics.median(one), 1),
                          "ratio": round(statistics.median(one) / statistics.median(base), 3), "target": "<= 2"}),
              flush=True)


if __name__ == "__main__":
    main()
