"""How soon the app's process ends after its window goes away (closed, or destroyed without a close
request) while the model is loading, and during ``import torch`` (which holds the GIL while it loads
its libraries). The functional tests (tests/ui/test_exit_and_keys.py) check that it ends; the seconds
are measured here.

Prints one JSON line per figure (``how``/``phase``): median and best of ``--repeats`` runs from the
close request to the process's end; targets 1 s while the model loads, 3 s during the torch import.
Run: ``python tests/bench/bench_exit.py [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: (how, phase, target seconds)
CASES = (("close", "Loading model", 1.0), ("destroyed", "Loading model", 1.0), ("close", "Starting PyTorch", 3.0))

SCRIPT = r"""
import sys, time
from PySide6.QtCore import QTimer
from convviz import app
from convviz.ui import main_window

how, phase = sys.argv[1], sys.argv[2]
original = main_window.MainWindow.start

def start(self, *args, **kwargs):
    original(self, *args, **kwargs)
    def go():
        print("closing", flush=True)
        if how == "close":
            self.close()
        else:  # the window goes away without a close request
            self.deleteLater()
    def on_busy(text):
        if text.startswith(phase) and not getattr(self, "_went", False):
            self._went = True
            QTimer.singleShot(0, go)
    self.session.busy.connect(on_busy)

main_window.MainWindow.start = start
sys.exit(app.main(["--model", "default"], exit_process=True))  # as main.py runs it
"""


def exit_seconds(how: str, phase: str, home: str, wait_s: float = 30.0) -> float:
    """Seconds from the window going away (during ``phase``) to the process's end; raises AssertionError
    if the app never got there, did not end within ``wait_s`` or ended with a non-zero code."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVVIZ_SETTINGS_ORG="convviz-tests",
               HOME=home, XDG_CONFIG_HOME=home)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, how, phase], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("closing"):
                asked = time.perf_counter()
                break
        else:
            raise AssertionError(f"the app never got to close: {proc.stderr.read()[-2000:]}")
        try:
            code = proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the process lived on {wait_s:.0f} s after the window went away ({how})") from None
        seconds = time.perf_counter() - asked
        assert code == 0, f"exit code {code}: {proc.stderr.read()[-2000:]}"
        return seconds
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for how, phase, target in CASES:
        with tempfile.TemporaryDirectory() as home:
            runs = [exit_seconds(how, phase, home) for _ in range(args.repeats)]
        print(json.dumps({"figure": "exit_after_window_gone_s", "how": how, "phase": phase,
                          "median": round(statistics.median(runs), 3), "best": round(min(runs), 3),
                          "target_s": target, "met": statistics.median(runs) < target, "runs": args.repeats}),
              flush=True)


if __name__ == "__main__":
    main()
