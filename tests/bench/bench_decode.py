"""Decoding the largest image the app accepts: a 9400×9400 16-bit PNG (under 1 MB on disk, near
``images.MAX_PIXELS``). tests/core/test_hostile_images.py checks its peak memory; the seconds are
measured here. Prints one JSON line: the median decode time of ``--repeats`` fresh processes
(target: under 60 s, the CLI's per-image decode limit being ``cli_io.DECODE_SECONDS``).
Run: ``python tests/bench/bench_decode.py [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # tests/: hostile_corpus

import hostile_corpus as corpus  # noqa: E402

SIDE = 9400
PROBE = """
import sys, time
from convviz.core.images import load_image
started = time.perf_counter()
load_image(sys.argv[1])
print(time.perf_counter() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from convviz.cli_io import DECODE_SECONDS

    with tempfile.TemporaryDirectory() as folder:
        path = corpus.deep_png(folder, SIDE, SIDE)
        runs = [float(subprocess.run([sys.executable, "-c", PROBE, path], cwd=ROOT, capture_output=True, text=True,
                                     timeout=300, check=True).stdout.split()[-1]) for _ in range(args.repeats)]
    median = statistics.median(runs)
    print(json.dumps({"figure": "decode_16bit_png_s", "pixels": SIDE * SIDE, "median": round(median, 3),
                      "max": round(max(runs), 3), "target_s": DECODE_SECONDS, "met": median < DECODE_SECONDS,
                      "runs": args.repeats}), flush=True)


if __name__ == "__main__":
    main()
