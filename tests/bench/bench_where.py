"""Where a network looks: Grad-CAM, the dense (fully convolutional) pass and crop-and-classify,
each against the raw torch work it is built on, in the same run.

Figures (one JSON line each; medians over ``--repeats``, the two sides run in rotation so drift and
other processes hit both alike; ``cpu_*`` is this thread's CPU time, the figure to trust on a busy machine):

* ``gradcam_vs_forward_backward`` — :func:`grad_cam` on the cat photo (preprocessing, the pass, the
  gradient, the heat on the photo and its box) vs ``model(x)`` + ``logits[0, c].backward()`` on the
  same input (target ≤ 1.3×); ``gradcam_vs_forward``: the same against the forward alone, for scale;
* ``dense_448_vs_forward_448`` — :func:`dense_maps` of a square photo at 448 px (resize, the pass,
  the head as a 1×1 convolution, softmax) vs ``model(x)`` on a 448×448 input (target ≤ 1.5×);
* ``windows_vs_dense`` — crop-and-classify (the default windows) vs the dense pass on the cat | coffee
  composite: the shared computation, as a ratio;
* ``first_call_ms`` — the one-off costs a model pays once (head search, grid traces), for scale.

Run: ``python tests/bench/bench_where.py [--repeats 9] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from convviz.core.images import load_image  # noqa: E402
from convviz.core.capture.layer_table import layer_table  # noqa: E402
from convviz.core.model.loading import load_model  # noqa: E402
from convviz.core.where import dense, windows  # noqa: E402
from convviz.core.where.gradcam import grad_cam  # noqa: E402

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "samples")


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def compare(name: str, ours, raw, repeats: int, target: float | None = None, labels=("ours", "raw")) -> dict:
    """Run ``ours`` and ``raw`` in rotation ``repeats`` times each (after one warm-up) and summarise."""
    ours(), raw()
    times = {labels[0]: [], labels[1]: []}
    for k in range(repeats):
        order = ((labels[0], ours), (labels[1], raw)) if k % 2 == 0 else ((labels[1], raw), (labels[0], ours))
        for label, fn in order:
            times[label].append(_timed(fn))
    line = {"figure": name, "repeats": repeats}
    for which, index in (("", 0), ("cpu_", 1)):
        a = statistics.median(t[index] for t in times[labels[0]])
        b = statistics.median(t[index] for t in times[labels[1]])
        line.update({f"{which}{labels[0]}_ms": round(a, 1), f"{which}{labels[1]}_ms": round(b, 1),
                     f"{which}ratio": round(a / b, 3)})
    if target is not None:
        line["target"] = target
        line["meets_target"] = line["cpu_ratio"] <= target
    print(json.dumps(line), flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("default")
    model = loaded.module
    cat = load_image(os.path.join(SAMPLES, "cat.jpg")).rgb
    coffee = load_image(os.path.join(SAMPLES, "coffee.jpg")).rgb
    composite = np.concatenate([cat[:, :450], np.asarray(Image.fromarray(coffee).resize((450, 300), Image.BICUBIC))], 1)
    square = np.ascontiguousarray(cat[:, 75:375])

    first = {}
    started = time.perf_counter()
    rows = tuple(layer_table(model, (3, 224, 224)))  # the app has the Layers table already
    first["layer_table_ms"] = round((time.perf_counter() - started) * 1000, 1)
    started = time.perf_counter()
    dense.dense_maps(loaded, square, 448)
    first["dense_first_call_ms"] = round((time.perf_counter() - started) * 1000, 1)
    started = time.perf_counter()
    dense.dense_maps(loaded, composite, 448)
    first["dense_new_size_ms"] = round((time.perf_counter() - started) * 1000, 1)

    x224 = loaded.preprocess.to_tensor(cat)

    def forward_backward():
        with torch.enable_grad():
            logits = model(x224)
            logits[0, 282].backward()
        for p in model.parameters():
            p.grad = None

    compare("gradcam_vs_forward_backward", lambda: grad_cam(loaded, cat, 282, rows=rows), forward_backward,
            args.repeats, 1.3, ("gradcam", "forward_backward"))

    def forward_224():
        with torch.no_grad():
            model(x224)

    compare("gradcam_vs_forward", lambda: grad_cam(loaded, cat, 282, rows=rows), forward_224, args.repeats, None,
            ("gradcam", "forward"))

    x448 = dense.photo_tensor(loaded.preprocess, square, (448, 448))

    def forward_448():
        with torch.no_grad():
            model(x448)

    compare("dense_448_vs_forward_448", lambda: dense.dense_maps(loaded, square, 448), forward_448, args.repeats, 1.5,
            ("dense", "forward"))
    line = compare("windows_vs_dense", lambda: windows.classify_windows(loaded, composite),
                   lambda: dense.dense_maps(loaded, composite, 448), max(3, args.repeats // 3), None, ("windows", "dense"))
    first["windows"] = int(len(windows.window_boxes(composite.shape[:2])))
    first["dense_input"] = list(dense.input_hw(composite.shape[:2], 448))
    print(json.dumps({"figure": "first_call_ms", **first, "windows_over_dense": line["cpu_ratio"]}), flush=True)


if __name__ == "__main__":
    main()
