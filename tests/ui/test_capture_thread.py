"""The engine's capture thread: every capture runs on one long-lived daemon thread, results and errors come back."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from convviz.core.images import load_image
from convviz.workers.capture_thread import run_on_capture_thread


def test_calls_from_any_thread_run_on_one_daemon_thread():
    def where():
        return threading.current_thread()

    with ThreadPoolExecutor(2) as pool:
        threads = {pool.submit(run_on_capture_thread, where).result() for _ in range(4)}
    threads.add(run_on_capture_thread(where))
    (thread,) = threads
    assert thread.name == "convviz-capture" and thread.daemon and thread is not threading.current_thread()


def test_the_result_or_the_exception_comes_back_and_a_nested_call_runs_inline():
    assert run_on_capture_thread(lambda: run_on_capture_thread(lambda: 41) + 1) == 42

    def broken():
        raise ValueError("the model's forward failed")

    with pytest.raises(ValueError, match="forward failed"):
        run_on_capture_thread(broken)
    assert run_on_capture_thread(lambda: "still serving") == "still serving"


def test_the_engine_captures_on_the_capture_thread(lite0_engine, sample_path):
    engine = lite0_engine
    seen = []
    handle = engine.loaded.module.conv_stem.register_forward_pre_hook(
        lambda *_: seen.append(threading.current_thread().name))
    try:
        rgb = load_image(sample_path("coffee")).rgb
        with engine.lock:
            before = engine.forward_passes
            capture, forward_ms = engine.capture(("capture-thread-test", 1), rgb)
            again, _ = engine.capture(("capture-thread-test", 1), rgb)
    finally:
        handle.remove()
    assert seen == ["convviz-capture"] and engine.forward_passes == before + 1
    assert again is capture and forward_ms > 0 and "blocks.3.0.conv_pw" in capture.outputs
