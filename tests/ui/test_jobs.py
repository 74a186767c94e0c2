"""The job runner: results, one-line failures, progress, cancel latency, graceful cancel, shutdown."""
import time

import pytest

from convviz.workers.jobs import JobFailed, JobRunner, Progress


def _slow_steps(n: int, step_s: float):
    """A deliberately slow job: ``n`` steps of ``step_s`` seconds each (busy work, no sleep-wait in the test)."""
    for i in range(n):
        end = time.perf_counter() + step_s
        while time.perf_counter() < end:
            pass
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


def test_cancel_latency_is_one_step(qtbot, runner):
    """A job of 200 × 20 ms steps stops within about one step of cancel()."""
    handle = runner.submit(_slow_steps, 200, 0.02, name="slow")
    with qtbot.waitSignal(handle.progress, timeout=5000):
        pass
    asked = time.perf_counter()
    handle.cancel()
    with qtbot.waitSignal(handle.cancelled, timeout=5000):
        pass
    latency = handle.ended_at - asked
    assert latency < 0.5, f"cancel took {latency * 1000:.0f} ms"
    qtbot.waitUntil(lambda: not runner.jobs, timeout=2000)


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
    started = time.perf_counter()
    assert r.shutdown(2.0)
    assert time.perf_counter() - started < 1.0
    assert all(not h.running for h in handles)
    assert not r.submit(lambda: 1).running  # a closed runner starts nothing
