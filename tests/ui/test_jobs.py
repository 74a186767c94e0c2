"""The job runner: results, one-line failures, progress, cancel at the next step, graceful cancel, shutdown.

How long a cancel or a shutdown takes is measured by ``tests/bench/bench_jobs.py``, not here."""
import time

import pytest

from convviz.workers.jobs import JobFailed, JobRunner, Progress


def _slow_steps(n: int, step_s: float, done: list | None = None):
    """A deliberately slow job: ``n`` steps of ``step_s`` seconds each (busy work, no sleep-wait in the test);
    each finished step is appended to ``done``."""
    for i in range(n):
        end = time.perf_counter() + step_s
        while time.perf_counter() < end:
            pass
        if done is not None:
            done.append(i)
        yield Progress((i + 1) / n, f"step {i + 1}/{n}")
    return n


@pytest.fixture
def runner(qtbot):
    r = JobRunner()
    yield r
    assert r.shutdown(5.0)


def test_plain_function_result(qtbot, runner):
    handle = runner.submit(lambda a, b: a + b, 2, 3, name="add")
    with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [5]
    assert not handle.running


def test_progress_is_typed_and_ordered(qtbot, runner):
    seen = []
    handle = runner.submit(_slow_steps, 4, 0.001)
    handle.progress.connect(lambda p: seen.append(p.fraction))
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert seen == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("error", [ValueError("bad value\nsecond line"), RuntimeError("size mismatch"),
                                   JobFailed("expected failure")])
def test_failure_is_one_line(qtbot, runner, error):
    def boom():
        raise error

    handle = runner.submit(boom)
    with qtbot.waitSignal(handle.failed, timeout=5000) as blocker:
        pass
    assert blocker.args[0] == str(error).splitlines()[0]
    assert "\n" not in blocker.args[0]


def test_cancel_stops_the_job_at_its_next_step(qtbot, runner):
    """A job of 200 × 20 ms steps runs at most the step in progress after cancel(): it stops at its next yield."""
    done: list[int] = []
    handle = runner.submit(_slow_steps, 200, 0.02, done, name="slow")
    with qtbot.waitSignal(handle.progress, timeout=5000):
        pass
    at_cancel = len(done)
    handle.cancel()
    with qtbot.waitSignal(handle.cancelled, timeout=5000):
        pass
    qtbot.waitUntil(lambda: not runner.jobs, timeout=2000)
    assert len(done) - at_cancel <= 1, f"{len(done) - at_cancel} steps ran after cancel()"


def test_graceful_cancel_returns_partial_result(qtbot, runner):
    def train(cancel):
        done = 0
        for done in range(1, 1000):
            if cancel.cancelled:
                break
            time.sleep(0)  # yield the GIL; the job polls the token once per "batch"
            end = time.perf_counter() + 0.005
            while time.perf_counter() < end:
                pass
        return done

    handle = runner.submit(train, graceful=True)
    qtbot.wait(30)
    handle.cancel()
    with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
        pass
    assert 1 <= blocker.args[0] < 999


def test_shutdown_cancels_and_waits(qtbot):
    r = JobRunner()
    handles = [r.submit(_slow_steps, 1000, 0.01) for _ in range(2)]
    assert r.shutdown(2.0)  # True: every job ended (they stop at their next 10 ms step)
    assert all(not h.running for h in handles)
    assert not r.submit(lambda: 1).running  # a closed runner starts nothing
