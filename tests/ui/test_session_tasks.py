"""The task seam: a core task runs by key with what it needs, reports progress, is cancelled, dropped
or replayed when its scope changes, and hands the GUI plain results (workers/session_tasks.py)."""
import threading

import pytest

from convviz.core.images import load_image
from convviz.core.tasks import Need, Scope, TaskInputs, TaskState, task
from convviz.workers.session import Session

from ui_helpers import STEP_MS, next_of

RELEASE = threading.Event()  # lets the blocking task below go on


@task(Scope.IMAGE, (Need.MODEL, Need.IMAGE, Need.GRADIENTS))
def logit_gradient(inputs: TaskInputs, state: TaskState):
    """The top class's logit and the mean |d logit / d input| of the current image (a real gradient)."""
    import torch

    x = inputs.model.preprocess.to_tensor(inputs.rgb).requires_grad_(True)
    state.progress(0.5, "forward")
    logits = inputs.model.module(x)
    top = int(logits.argmax())
    (grad,) = torch.autograd.grad(logits[0, top], x)
    return top, float(grad.abs().mean()), inputs.rgb.shape


@task(Scope.IMAGE, (Need.IMAGE,))
def blocking(inputs, state):
    """Reports a partial result, then waits for RELEASE (checking for cancellation) and returns the image height."""
    state.partial("half", 0.5, "half way")
    for _ in range(6000):
        if RELEASE.wait(0.01):
            return inputs.rgb.shape[0]
        state.check()
    raise ValueError("never released")


@task(Scope.NONE, graceful=True)
def graceful_count(inputs, state):
    """Counts until cancelled, then returns how far it got (like training keeping its best model)."""
    n = 0
    while not state.cancelled and n < 10**7:
        n += 1
        if n == 10:
            state.progress(None, "counting")
    return n


@task(Scope.NONE)
def refuses(inputs, state):
    raise ValueError(f"{inputs.args['what']}: not usable\nsecond line")


@pytest.fixture
def session(qtbot, lite0_engine, sample_path):
    session = Session(engine=lite0_engine)
    session.set_image(load_image(sample_path("cat")))
    session.adopt_installed_model()
    RELEASE.clear()
    yield session
    RELEASE.set()
    assert session.shutdown(5.0)


def ready_of(qtbot, session, key, action):
    return next_of(qtbot, session.task_ready, key, action)


def test_task_gets_model_image_and_gradients_and_reports(qtbot, session):
    import torch

    steps = []
    session.task_progress.connect(lambda key, p: steps.append((key, p.fraction, p.text)))
    top, grad, shape = ready_of(qtbot, session, "g", lambda: session.run_task("g", logit_gradient))
    loaded = session.engine.loaded
    x = loaded.preprocess.to_tensor(session.image.rgb).requires_grad_(True)
    logits = loaded.module(x)
    (want,) = torch.autograd.grad(logits[0, int(logits.argmax())], x)
    assert top == int(logits.argmax()) and grad == pytest.approx(float(want.abs().mean()), rel=1e-5) and grad > 0
    assert shape == session.image.rgb.shape
    assert ("g", 0.5, "forward") in steps
    assert session.task_result("g") == (top, grad, shape)


def test_image_change_replays_or_drops_image_tasks(qtbot, session, sample_path):
    ready_of(qtbot, session, "r", lambda: session.run_task("r", logit_gradient, replay=True))
    RELEASE.set()
    ready_of(qtbot, session, "d", lambda: session.run_task("d", blocking))
    RELEASE.clear()
    coffee = load_image(sample_path("coffee"))
    stale = []
    session.task_stale.connect(stale.append)
    result = ready_of(qtbot, session, "r", lambda: session.set_image(coffee))
    assert result[2] == coffee.rgb.shape  # replayed on the new image
    assert stale == ["d"] and session.task_result("d") is None  # dropped: what it showed is about the old image
    assert session.task_result("r") == result


def test_newer_run_of_a_key_wins_and_stale_results_are_dropped(qtbot, session, sample_path):
    got = []
    session.task_ready.connect(lambda key, r: got.append((key, r)))
    with qtbot.waitSignal(session.task_progress, timeout=STEP_MS):
        session.run_task("b", blocking)
    session.set_image(load_image(sample_path("coffee")))  # the running task becomes stale (no replay)
    height = session.image.rgb.shape[0]
    session.run_task("b", blocking)
    RELEASE.set()
    qtbot.waitUntil(lambda: bool(got), timeout=STEP_MS)
    qtbot.waitUntil(lambda: not session.runner.jobs, timeout=STEP_MS)
    assert got == [("b", height)]


def test_cancel_stops_within_a_batch_and_graceful_keeps_its_result(qtbot, session):
    with qtbot.waitSignal(session.task_progress, timeout=STEP_MS):
        session.run_task("b", blocking)
    with qtbot.waitSignal(session.task_cancelled, timeout=STEP_MS, check_params_cb=lambda k: k == "b"):
        session.cancel_task("b")
    assert not session.task_running("b") and session.task_result("b") is None
    with qtbot.waitSignal(session.task_progress, timeout=STEP_MS):
        session.run_task("c", graceful_count)
    count = ready_of(qtbot, session, "c", lambda: session.cancel_task("c"))
    assert 10 <= count < 10**7


def test_failures_are_one_line_and_needs_are_checked(qtbot, lite0_engine):
    session = Session(engine=lite0_engine)
    try:
        with qtbot.waitSignal(session.task_failed, timeout=STEP_MS) as failed:
            session.run_task("x", logit_gradient)
        assert failed.args == ["x", "No model is loaded yet."]
        with qtbot.waitSignal(session.task_failed, timeout=STEP_MS) as failed:
            session.run_task("y", refuses, what="folder")
        assert failed.args == ["y", "folder: not usable"]
    finally:
        assert session.shutdown(5.0)


def test_tasks_are_found_by_name_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from convviz.core.tasks import get_task; t = get_task('finetune.tasks:train_task'); "
            "print(t.scope.value, sorted(n.value for n in t.needs), t.graceful, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["none", "['model_copy']", "True", "False"]


def test_paced_task_waits_until_the_gui_has_drawn(qtbot, session):
    seen = []
    session.task_progress.connect(lambda key, p: seen.append(p.partial))
    with qtbot.waitSignal(session.task_progress, timeout=STEP_MS):
        session.run_task("p", blocking, paced=True)
    run = session._tasks["p"]
    assert not run.gate.wait(0.0)  # the task is held until the GUI says it drew the update
    session.task_shown("p", 1)
    assert run.gate.wait(0.0) and seen == ["half"]
    assert ready_of(qtbot, session, "p", RELEASE.set) == session.image.rgb.shape[0]
