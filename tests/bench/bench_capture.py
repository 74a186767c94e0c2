"""Forward pass with full activation capture vs the raw forward of the same model.

Prints one JSON line per figure: medians of ``--repeats`` runs (interleaved so drift hits
both alike), the ratio capture / raw, and the target (overhead ≤ 15 %).
Run: ``python tests/bench/bench_capture.py [--repeats 15]``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from convviz.core.activations import Capturer  # noqa: E402
from convviz.core.allocator import keep_freed_memory  # noqa: E402
from convviz.core.images import load_image  # noqa: E402
from convviz.core.layer_table import layer_table  # noqa: E402
from convviz.core.models import load_model  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "samples", "cat.jpg")


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bench(spec: str, repeats: int) -> None:
    loaded = load_model(spec, require_weights=False)
    model = loaded.module
    x = loaded.preprocess.to_tensor(load_image(SAMPLE).rgb)
    capturer = Capturer(copy.deepcopy(model))  # the raw baseline runs on a hook-free twin
    model = copy.deepcopy(capturer.model)
    for module in model.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()

    def raw():
        with torch.no_grad():
            model(x)

    for _ in range(3):
        raw()
        capturer(x)
    raw_ms, cap_ms = [], []
    for _ in range(repeats):
        raw_ms.append(_ms(raw))
        cap_ms.append(_ms(lambda: capturer(x)))
    raw_med, cap_med = statistics.median(raw_ms), statistics.median(cap_ms)
    layers = len(capturer(x).outputs)
    print(json.dumps({"figure": "capture_vs_raw_forward", "model": spec, "layers_captured": layers,
                      "raw_ms": round(raw_med, 2), "capture_ms": round(cap_med, 2),
                      "ratio": round(cap_med / raw_med, 3), "target_ratio": 1.15, "repeats": repeats,
                      "paired_ratio_median": round(statistics.median(c / r for c, r in zip(cap_ms, raw_ms)), 3),
                      "cloned_for_inplace": len(capturer.clone_names)}), flush=True)
    table_ms = statistics.median(_ms(lambda: layer_table(model)) for _ in range(3))
    print(json.dumps({"figure": "layer_table_ms", "model": spec, "median_ms": round(table_ms, 1),
                      "raw_forward_ms": round(raw_med, 2), "ratio": round(table_ms / raw_med, 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--models", nargs="+", default=["default", "resnet18"])
    parser.add_argument("--glibc-defaults", action="store_true", help="skip the allocator tuning the app does")
    args = parser.parse_args()
    if not args.glibc_defaults:
        keep_freed_memory()
    for spec in args.models:
        bench(spec, args.repeats)


if __name__ == "__main__":
    main()
