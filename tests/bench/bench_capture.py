"""Capturing forward passes vs the raw forward of the same model, in the same run.

Figures (one JSON line each, per model):
* ``capture_vs_raw_forward`` — every layer recorded (target ≤ 1.15× the raw forward);
* ``capture_vs_out_of_place_twin`` — the same, over the earlier bench's baseline (a hook-free
  copy with in-place activations switched off, as the old capturer left the model);
* ``selective_capture_vs_raw_forward`` — one layer recorded (``--layer``, default the
  middle convolution; target ≤ 1.03×);
* ``batch_capture_vs_raw_forward`` — every layer of a ``--batch``-image batch (≤ 1.15×);
* ``plain_hooks_vs_raw_forward`` — for scale: a forward hook per module keeping every output;
* ``app_capture_vs_raw_forward`` — the app's path: ``Engine.capture`` of a new image (preprocess, the
  pass on the engine's capture thread, the oldest capture evicted) asked for from two job threads in
  turn, as the job pool does, against preprocess + raw forward on a job thread; with the minor page
  faults per capture and the share of captures that took over 1000 (fresh pages from the system);
* ``layer_table_ms`` — building the layer table, for scale.

Each figure runs raw and capture in rotation (the order shifts every repeat, so drift and
other processes hit all alike) and reports both medians, their ratio and the median of
the per-pair ratios, in wall time and in this thread's CPU time (``cpu_*``: leaves out
the time other processes held the core; the figures to trust on a busy machine). The raw baseline is
the caller's very model: a capture leaves it untouched (in-place activations included).
Run: ``python tests/bench/bench_capture.py [--repeats 21] [--models default resnet18]``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from convviz.core.capture.activations import Capturer  # noqa: E402
from convviz.core.capture.allocator import keep_freed_memory  # noqa: E402
from convviz.core.images import load_image  # noqa: E402
from convviz.core.capture.layer_table import layer_table  # noqa: E402
from convviz.core.model.loading import load_model  # noqa: E402
from convviz.workers.engine import Engine  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "samples", "cat.jpg")


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _wall_and_cpu_ms(fn) -> tuple[float, float]:
    """Wall and this thread's CPU time: CPU time leaves out the time other processes held the core."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def _summary(cap: list, raw: list, prefix: str = "") -> dict:
    raw_med, cap_med = statistics.median(raw), statistics.median(cap)
    return {prefix + "raw_ms": round(raw_med, 2), prefix + "capture_ms": round(cap_med, 2),
            prefix + "ratio": round(cap_med / raw_med, 3),
            prefix + "paired_ratio_median": round(statistics.median(c / r for c, r in zip(cap, raw)), 3)}


class PlainHooks:
    """The straightforward capture, for scale: a forward hook on every module appending its output
    (in-place activations switched off for the pass so pre-activations survive)."""

    def __init__(self, model: nn.Module, x: torch.Tensor):
        self.model, self.x = model, x

    def __call__(self) -> list:
        x = self.x
        kept = []
        switched = [m for m in self.model.modules() if getattr(m, "inplace", None) is True]
        handles = [m.register_forward_hook(lambda m, a, out: kept.append(out)) for m in self.model.modules()]
        for module in switched:
            module.inplace = False
        try:
            with torch.no_grad():
                self.model(x)
        finally:
            for handle in handles:
                handle.remove()
            for module in switched:
                module.inplace = True
        return kept


def interleaved(fns: dict, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) ms of each function, run in rotation (the order shifts every repeat)."""
    for _ in range(3):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    names = list(fns)
    for i in range(repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            times[name].append(_wall_and_cpu_ms(fns[name]))
    return times


def figures(times: dict, candidate: str, baseline: str = "raw") -> dict:
    """Medians, ratio and paired-ratio median of ``candidate`` over ``baseline``, wall and CPU."""
    cap, raw = times[candidate], times[baseline]
    wall = _summary([c[0] for c in cap], [r[0] for r in raw])
    cpu = _summary([c[1] for c in cap], [r[1] for r in raw], "cpu_")
    return {**wall, **cpu, "repeats": len(cap)}


def _forward(model: nn.Module, x: torch.Tensor):
    def raw():
        with torch.no_grad():
            model(x)

    return raw


def _out_of_place_twin(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if getattr(module, "inplace", None) is True:
            module.inplace = False
    return twin


def _middle_conv(model: nn.Module) -> str:
    convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    return convs[len(convs) // 2]


def _untouched(model: nn.Module, inplace_before: dict) -> bool:
    hooks = any(m._forward_hooks or m._forward_pre_hooks or "forward" in m.__dict__ for m in model.modules())
    return not hooks and inplace_before == {n: m.inplace for n, m in model.named_modules() if hasattr(m, "inplace")}


def _held_mb(capture) -> float:
    """MB of tensor storage a capture holds (outputs computed on first read not counted)."""
    items = [getattr(records, "_items", records) for records in (capture.outputs, capture.inputs)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for store in items for t in store.values() if isinstance(t, torch.Tensor)}
    return round(sum(storages.values()) / 2**20, 1)


def app_capture(loaded, repeats: int, common: dict) -> None:
    """``app_capture_vs_raw_forward``: Engine.capture of a new image from two job threads in turn."""
    engine = Engine()
    with engine.lock:
        engine.install(loaded, Engine.describe(loaded))
    rgb = load_image(SAMPLE).rgb
    twin = copy.deepcopy(loaded.module)
    keys = iter(range(1, 1 << 30))

    def capture():
        with engine.lock:
            engine.capture(("bench", next(keys)), rgb)

    def raw():
        with torch.no_grad():
            twin(loaded.preprocess.to_tensor(rgb))

    times = {"raw": [], "capture": []}
    faults = []
    pools = [ThreadPoolExecutor(1), ThreadPoolExecutor(1)]  # two job threads, used in turn as the job pool does

    def timed(fn, name, record):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        elapsed = _ms(fn)
        if record:
            times[name].append(elapsed)
            if name == "capture":
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

    for i in range(3 + repeats):
        for name, fn in (("raw", raw), ("capture", capture))[:: 1 if i % 2 else -1]:
            pools[i % 2].submit(timed, fn, name, i >= 3).result()
    for pool in pools:
        pool.shutdown()
    raw_med, cap_med = statistics.median(times["raw"]), statistics.median(times["capture"])
    print(json.dumps({"figure": "app_capture_vs_raw_forward", **common, "raw_ms": round(raw_med, 2),
                      "capture_ms": round(cap_med, 2), "ratio": round(cap_med / raw_med, 3),
                      "paired_ratio_median": round(statistics.median(
                          c / r for c, r in zip(times["capture"], times["raw"])), 3),
                      "page_faults_mean": round(statistics.fmean(faults)),
                      "captures_faulting_share": round(sum(f > 1000 for f in faults) / len(faults), 2),
                      "repeats": repeats, "note": "preprocess included on both sides; new image key each time"}),
          flush=True)


def bench(spec: str, repeats: int, layer: str | None, batch: int) -> None:
    loaded = load_model(spec, require_weights=False)
    model = loaded.module
    x = loaded.preprocess.to_tensor(load_image(SAMPLE).rgb)
    inplace_before = {n: m.inplace for n, m in model.named_modules() if hasattr(m, "inplace")}
    common = {"model": spec, "threads": torch.get_num_threads(), "load_avg_1m": round(os.getloadavg()[0], 2)}

    with Capturer(model) as capturer:
        times = interleaved({"raw": _forward(model, x), "capture": lambda: capturer(x),
                             "twin": _forward(_out_of_place_twin(model), x), "hooks": PlainHooks(model, x)}, repeats)
        capture = capturer(x)
        layers, held_mb = len(capture.outputs), _held_mb(capture)
        del capture
    print(json.dumps({"figure": "capture_vs_raw_forward", **common, "layers_captured": layers, "held_mb": held_mb,
                      **figures(times, "capture"), "target_ratio": 1.15, "cloned_for_inplace": len(capturer.clone_names),
                      "model_untouched": _untouched(model, inplace_before)}), flush=True)
    print(json.dumps({"figure": "capture_vs_out_of_place_twin", **common, **figures(times, "capture", "twin"),
                      "note": "the earlier bench's baseline: a hook-free copy with in-place activations off"}),
          flush=True)
    print(json.dumps({"figure": "plain_hooks_vs_raw_forward", **common, **figures(times, "hooks"),
                      "note": "for scale: a forward hook per module keeping every output"}), flush=True)

    layer = layer or _middle_conv(model)
    with Capturer(model, layers=[layer]) as capturer:
        times = interleaved({"raw": _forward(model, x), "capture": lambda: capturer(x)}, 3 * repeats)
    print(json.dumps({"figure": "selective_capture_vs_raw_forward", **common, "layer": layer,
                      **figures(times, "capture"), "target_ratio": 1.03,
                      "model_untouched": _untouched(model, inplace_before)}), flush=True)

    if batch > 1:
        xb = x.repeat(batch, 1, 1, 1)
        with Capturer(model) as capturer:
            times = interleaved({"raw": _forward(model, xb), "capture": lambda: capturer(xb)}, max(5, repeats // 3))
        print(json.dumps({"figure": "batch_capture_vs_raw_forward", **common, "batch": batch,
                          **figures(times, "capture"), "target_ratio": 1.15}), flush=True)

    app_capture(loaded, repeats, common)

    raw_ms = statistics.median(_ms(_forward(model, x)) for _ in range(5))
    table_ms = statistics.median(_ms(lambda: layer_table(model)) for _ in range(3))
    print(json.dumps({"figure": "layer_table_ms", **common, "median_ms": round(table_ms, 1),
                      "raw_forward_ms": raw_ms, "ratio": round(table_ms / raw_ms, 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--models", nargs="+", default=["default", "resnet18"])
    parser.add_argument("--layer", help="record name for the one-layer figure (default: the middle conv)")
    parser.add_argument("--batch", type=int, default=4, help="images in the batch figure (1: skip it)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--glibc-defaults", action="store_true", help="skip the allocator tuning the app does")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.glibc_defaults:
        keep_freed_memory()
    for spec in args.models:
        bench(spec, args.repeats, args.layer if spec == args.models[0] else None, args.batch)


if __name__ == "__main__":
    main()
