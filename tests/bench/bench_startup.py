"""Start-up: the window paints before ``import torch`` alone would have finished.

Runs ``python main.py --exit-after-paint`` and ``python -c "import torch"`` alternately
(``--repeats`` times each, so machine load hits both alike) and prints one JSON line per
figure: medians of spawn → first paint (measured here, from ``Popen`` to the
``first-paint`` line) and of the app's own figure (from the top of ``main.py``), the
median of spawn → torch imported, and their ratio (target ≤ 0.5).
Run: ``QT_QPA_PLATFORM=offscreen python tests/bench/bench_startup.py [--repeats 7]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")


def first_paint(env: dict) -> tuple[float, float]:
    """(seconds from spawn to the first-paint line, the app's own seconds since main.py began)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, MAIN, "--exit-after-paint"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("first-paint "):
                return time.perf_counter() - started, float(line.split()[1])
    finally:
        proc.stdout.close()
        proc.wait(timeout=120)
    raise RuntimeError(f"main.py exited with {proc.returncode} before painting")


def import_torch(env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7, help="runs of each (at least 5)")
    args = parser.parse_args()
    repeats = max(5, args.repeats)
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               CONVVIZ_SETTINGS_ORG=os.environ.get("CONVVIZ_SETTINGS_ORG", "convviz-bench"))
    first_paint(env), import_torch(env)  # warm the file cache for both
    spawn, inside, torch_s = [], [], []
    for _ in range(repeats):
        outer, inner = first_paint(env)
        spawn.append(outer)
        inside.append(inner)
        torch_s.append(import_torch(env))
    paint_med, torch_med = statistics.median(spawn), statistics.median(torch_s)
    print(json.dumps({"figure": "first_paint_s", "spawn_to_paint_median": round(paint_med, 3),
                      "from_main_py_median": round(statistics.median(inside), 3), "runs": repeats}), flush=True)
    print(json.dumps({"figure": "import_torch_s", "spawn_to_imported_median": round(torch_med, 3),
                      "runs": repeats}), flush=True)
    print(json.dumps({"figure": "paint_vs_import_torch", "ratio": round(paint_med / torch_med, 3),
                      "target_ratio": 0.5, "met": paint_med <= 0.5 * torch_med}), flush=True)


if __name__ == "__main__":
    main()
