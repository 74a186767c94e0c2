"""The job runner's promptness: how long cancel() and shutdown() take (DESIGN.md: cancelling returns
within one batch). The functional tests (tests/ui/test_jobs.py) check that a job stops at its next
step; the seconds are measured here.

Prints one JSON line per figure: the median and worst cancel latency of a job of 20 ms steps
(target: under 0.5 s, i.e. well within one step plus the event loop), and the median time
``shutdown()`` takes with two such jobs of 10 ms steps running (target: under 1 s).
Run: ``QT_QPA_PLATFORM=offscreen python tests/bench/bench_jobs.py [--repeats 9]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication  # noqa: E402

from convviz.workers.jobs import JobRunner, Progress  # noqa: E402

CANCEL_TARGET_S, SHUTDOWN_TARGET_S = 0.5, 1.0


def slow_steps(n: int, step_s: float):
    for i in range(n):
        end = time.perf_counter() + step_s
        while time.perf_counter() < end:
            pass
        yield Progress((i + 1) / n, f"step {i + 1}/{n}")
    return n


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError("the job runner did not get there in time")
        QCoreApplication.processEvents()
        time.sleep(0.0005)


def cancel_latency(runner: JobRunner) -> float:
    handle = runner.submit(slow_steps, 200, 0.02, name="slow")
    wait_until(lambda: handle.last_progress is not None)
    asked = time.perf_counter()
    handle.cancel()
    wait_until(lambda: not handle.running)
    wait_until(lambda: not runner.jobs)
    return handle.ended_at - asked


def shutdown_seconds() -> float:
    runner = JobRunner()
    handles = [runner.submit(slow_steps, 1000, 0.01) for _ in range(2)]
    wait_until(lambda: all(h.last_progress is not None for h in handles))
    started = time.perf_counter()
    if not runner.shutdown(10.0):
        raise RuntimeError("shutdown left jobs running")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    runner = JobRunner()
    latencies = [cancel_latency(runner) for _ in range(args.repeats)]
    runner.shutdown(5.0)
    print(json.dumps({"figure": "cancel_latency_s", "median": round(statistics.median(latencies), 4),
                      "max": round(max(latencies), 4), "step_s": 0.02, "target_s": CANCEL_TARGET_S,
                      "met": max(latencies) < CANCEL_TARGET_S, "runs": args.repeats}), flush=True)
    shutdowns = [shutdown_seconds() for _ in range(max(3, args.repeats // 3))]
    print(json.dumps({"figure": "shutdown_s", "median": round(statistics.median(shutdowns), 4),
                      "max": round(max(shutdowns), 4), "jobs": 2, "target_s": SHUTDOWN_TARGET_S,
                      "met": statistics.median(shutdowns) < SHUTDOWN_TARGET_S, "runs": len(shutdowns)}), flush=True)
    del app


if __name__ == "__main__":
    main()
