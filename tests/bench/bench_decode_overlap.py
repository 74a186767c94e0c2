"""Does overlapping decoding with inference pay? The fast path's feature pass three ways (issue #15).

    python tests/bench/bench_decode_overlap.py [DATA_DIR] [--runs 3]

Every image of DATA_DIR and its mirror image through the shipped graph (ONNX Runtime), no feature
cache, batch 32, alternating the modes so each sees the same machine load:

* ``serial``: decode a batch, then run it (the fast path's default with ONNX Runtime);
* ``decode_process``: a DataLoader worker process decodes the next batch while this one runs
  (ONNX Runtime on every core, as in the app);
* ``decode_process_ort_one_less``: the same with one ONNX Runtime thread fewer, leaving the
  worker a core;
* ``ort_async``: ``InferenceSession.run_async`` runs a batch on ONNX Runtime's threads while the
  main thread decodes the next one.

Prints one JSON line per mode: the median seconds and its ratio to ``serial`` (same run).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout, not the installed one
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "clothing-longsleeve-outwear")
BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?", default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    import torch

    from convviz.core.finetune import TrainConfig, scan_folder
    from convviz.core.finetune.bundled_fast import prepare
    from convviz.core.finetune.bundled_graph import load_bundled
    from convviz.core.finetune.features import ImageDataset, extract_features, normalize

    network = prepare(TrainConfig())
    if network is None:
        raise SystemExit("the shipped graph is not usable here (onnxruntime missing?)")
    cores = os.cpu_count() or 1
    size, state = network.preprocess.input_size, network.backbone_state()
    runners = {n: load_bundled(state, size, threads=n) for n in {cores, max(1, cores - 1)}}
    scan = scan_folder(args.data)
    samples = scan.train + scan.val

    class Backend:  # what extract_features calls: the graph, no feature cache
        device, kind, cache_key = "cpu", "onnx", None

        def __init__(self, runner):
            self.runner = runner

        def __call__(self, x):
            return self.runner(x)

    def by_loader(workers: int, threads: int) -> int:
        *_, (_, out) = extract_features(Backend(runners[threads]), samples, network.preprocess, batch_size=BATCH,
                                        mirror=True, workers=workers, cache=False)
        return len(out["features"]) + len(out["mirror_features"])

    def by_async() -> int:
        runner = runners[cores]
        session, name, dataset, done = runner.session, runner.input_name, ImageDataset(samples, network.preprocess), queue.SimpleQueue()

        def batch(start: int):
            x = normalize(torch.stack([dataset[i][0] for i in range(start, min(start + BATCH, len(dataset)))]), network.preprocess)
            return np.ascontiguousarray(torch.cat([x, x.flip(3)]).numpy(), dtype=np.float32)

        rows, pending = 0, 0
        for start in range(0, len(dataset), BATCH):
            feed = {name: batch(start)}
            if pending:
                rows += len(done.get())
                pending -= 1
            session.run_async(None, feed, lambda result, _, error: done.put(error or result[0]), None)
            pending += 1
        while pending:
            rows += len(done.get())
            pending -= 1
        return rows

    modes = {"serial": lambda: by_loader(0, cores), "decode_process": lambda: by_loader(1, cores),
             "decode_process_ort_one_less": lambda: by_loader(1, max(1, cores - 1)), "ort_async": by_async}
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    torch.set_num_threads(cores)
    for _ in range(args.runs):
        for mode, run in modes.items():
            started = time.perf_counter()
            rows = run()
            seconds[mode].append(time.perf_counter() - started)
            assert rows == 2 * len(samples), (mode, rows)
    serial = statistics.median(seconds["serial"])
    for mode, values in seconds.items():
        print(json.dumps({"figure": "decode_overlap", "mode": mode, "images": len(samples), "views": 2, "cores": cores,
                          "ort_threads": max(1, cores - 1) if mode.endswith("one_less") else cores,
                          "seconds": [round(v, 2) for v in values], "median_s": round(statistics.median(values), 2),
                          "ratio_to_serial": round(statistics.median(values) / serial, 3),
                          "load_1_5_15": ", ".join(f"{v:.2f}" for v in os.getloadavg())}), flush=True)


if __name__ == "__main__":
    main()
