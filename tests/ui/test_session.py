"""Session: views by kind, stale results dropped, subscriptions replayed, plain data out, clean shutdown."""
import numpy as np
import pytest

from convviz.core.images import LoadedImage, load_image
from convviz.core.views.standard import LayerMosaic, Predictions
from convviz.workers.results import Generations
from convviz.workers.session import Session

from ui_helpers import STEP_MS, next_of


@pytest.fixture
def loaded(qtbot, lite0_engine, sample_path):
    """A session on the shared Lite0 engine showing the cat, predictions subscribed and in."""
    session = Session(engine=lite0_engine)
    with qtbot.waitSignal(session.view_ready, timeout=STEP_MS, check_params_cb=lambda key, _d: key == "top"):
        session.request_view("top", "predictions")
        session.set_image(load_image(sample_path("cat")))
        session.adopt_installed_model()
    yield session
    assert session.shutdown(5.0)


def wait_view(qtbot, session, key, action):
    return next_of(qtbot, session.view_ready, key, action)


def test_views_are_plain_frozen_data(qtbot, loaded):
    top = wait_view(qtbot, loaded, "top", lambda: loaded.request_view("top", "predictions", k=3))
    assert isinstance(top, Predictions) and len(top.top) == 3
    assert top.top[0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}
    mosaic = wait_view(qtbot, loaded, "m", lambda: loaded.request_view("m", "mosaic", "blocks.3.0.conv_pw"))
    assert isinstance(mosaic, LayerMosaic) and isinstance(mosaic.mosaic, np.ndarray)
    assert mosaic.shape == (240, 28, 28) == loaded.model_info.row("blocks.3.0.conv_pw").out_shape
    with pytest.raises(Exception):  # frozen: the GUI cannot change what a worker computed
        mosaic.layer = "other"
    conv = wait_view(qtbot, loaded, "c", lambda: loaded.request_view("c", "conv", "blocks.1.0.conv_dw"))
    assert isinstance(conv.input, np.ndarray) and isinstance(conv.weight, np.ndarray)
    assert conv.rf == loaded.model_info.row("blocks.1.0.conv_dw").rf


def test_newest_request_of_a_key_wins(qtbot, loaded):
    seen = []
    loaded.view_ready.connect(lambda key, data: seen.append(data.layer) if key == "m" else None)
    with qtbot.waitSignal(loaded.view_ready, timeout=STEP_MS, check_params_cb=lambda k, _d: k == "m"):
        loaded.request_view("m", "mosaic", "conv_stem")
        loaded.request_view("m", "mosaic", "blocks.2.1.conv_dw")
    qtbot.waitUntil(lambda: not loaded.runner.jobs, timeout=STEP_MS)
    assert seen == ["blocks.2.1.conv_dw"]


def test_keys_are_independent(qtbot, loaded):
    got = {}
    loaded.view_ready.connect(lambda key, data: got.setdefault(key, data.layer))
    with qtbot.waitSignals([loaded.view_ready, loaded.view_ready], timeout=STEP_MS):
        loaded.request_view("a", "mosaic", "conv_stem")
        loaded.request_view("b", "mosaic", "conv_head")
    qtbot.waitUntil(lambda: len(got) == 2, timeout=STEP_MS)
    assert got == {"a": "conv_stem", "b": "conv_head"}


def test_image_change_marks_stale_and_replays_every_subscription(qtbot, loaded, sample_path):
    wait_view(qtbot, loaded, "m", lambda: loaded.request_view("m", "mosaic", "conv_stem"))
    passes = loaded.forward_passes
    keys = []
    loaded.view_ready.connect(lambda key, _d: keys.append(key))
    with qtbot.waitSignal(loaded.views_stale, timeout=STEP_MS):
        loaded.set_image(load_image(sample_path("coffee")))
    qtbot.waitUntil(lambda: {"top", "m"} <= set(keys), timeout=STEP_MS)
    assert loaded.forward_passes == passes + 1
    with loaded.engine.lock:
        assert loaded.subscription("top").kind == "predictions"


def test_replay_submits_the_newest_view_first_and_the_others_once_it_is_delivered(qtbot, loaded, sample_path):
    wait_view(qtbot, loaded, "m", lambda: loaded.request_view("m", "mosaic", "conv_stem"))
    events = []
    loaded.view_ready.connect(lambda key, _d: events.append(("ready", key)))
    submit = loaded.runner.submit

    def noted(func, *args, **kwargs):
        events.append(("submit", args[3].kind if func.__name__ == "_view_job" else func.__name__))
        return submit(func, *args, **kwargs)

    loaded.runner.submit = noted
    try:
        loaded.set_image(load_image(sample_path("coffee")))
        assert events == [("submit", "mosaic")]  # the newest subscription only, at first
        qtbot.waitUntil(lambda: ("ready", "top") in events, timeout=STEP_MS)
    finally:
        loaded.runner.submit = submit
    assert events == [("submit", "mosaic"), ("ready", "m"), ("submit", "predictions"), ("ready", "top")]


def test_a_view_asked_while_a_replay_waits_is_not_overridden_by_it(qtbot, loaded, sample_path):
    wait_view(qtbot, loaded, "m", lambda: loaded.request_view("m", "mosaic", "conv_stem"))
    got = []
    loaded.view_ready.connect(lambda key, data: got.append(len(data.top)) if key == "top" else None)
    loaded.set_image(load_image(sample_path("coffee")))  # "top" (k=5) waits for "m"
    loaded.request_view("top", "predictions", k=2)  # asked before the replay starts it
    qtbot.waitUntil(lambda: not loaded.runner.jobs, timeout=STEP_MS)
    assert got == [2] and loaded.subscription("top").args == {"k": 2}


def test_an_old_images_view_is_not_delivered_while_its_replay_waits(qtbot, loaded, sample_path):
    labels = []
    loaded.view_ready.connect(lambda key, data: labels.append(data.top[0]["label"]) if key == "top" else None)
    loaded.request_view("top", "predictions")  # in flight for the cat …
    loaded.request_view("m", "mosaic", "conv_stem")
    loaded.set_image(load_image(sample_path("coffee")))  # … made stale at once, though restarted later
    qtbot.waitUntil(lambda: not loaded.runner.jobs, timeout=STEP_MS)
    assert len(labels) == 1 and labels[0] not in {"tabby", "tiger cat", "Egyptian cat"}, labels


def test_dropped_view_is_not_delivered(qtbot, loaded):
    keys = []
    loaded.view_ready.connect(lambda key, _d: keys.append(key))
    loaded.request_view("gone", "mosaic", "conv_head")
    loaded.drop_view("gone")
    qtbot.waitUntil(lambda: not loaded.runner.jobs, timeout=STEP_MS)
    assert "gone" not in keys and loaded.subscription("gone") is None


def test_a_failing_view_reports_one_line_for_its_key(qtbot, loaded):
    with qtbot.waitSignal(loaded.view_failed, timeout=STEP_MS) as blocker:
        loaded.request_view("bad", "mosaic", "no.such.layer")
    key, message = blocker.args
    assert key == "bad" and "no.such.layer" in message and "\n" not in message
    with qtbot.waitSignal(loaded.view_failed, timeout=STEP_MS) as blocker:
        loaded.request_view("unknown", "no-such-kind")
    assert blocker.args == ["unknown", "no view of kind 'no-such-kind'"]


def test_set_image_uses_an_in_memory_picture(qtbot, loaded):
    picture = LoadedImage(rgb=np.full((50, 80, 3), 128, np.uint8), source="pasted image", original_mode="RGB")
    wait_view(qtbot, loaded, "top", lambda: loaded.set_image(picture))
    assert loaded.image is picture


def test_missing_file_fails_with_one_line(qtbot, tmp_path):
    session = Session()
    with qtbot.waitSignal(session.image_failed, timeout=STEP_MS) as blocker:
        session.open_image(str(tmp_path / "gone.png"))
    assert blocker.args == ["gone.png: no such file"]
    assert session.shutdown(5.0)


def test_shutdown_during_a_model_load_leaves_nothing_running(qtbot, sample_path):
    session = Session()
    delivered = []
    session.model_loaded.connect(delivered.append)
    session.load_model("default")
    session.open_image(sample_path("cat"))
    assert session.shutdown(120.0)
    assert not session.runner.jobs and not delivered
    session.load_model("resnet18")  # a closed session starts nothing
    assert not session.runner.jobs


def test_generations_mark_older_tickets_stale():
    gens = Generations()
    first, second = gens.next("image"), gens.next("image")
    other = gens.next("model")
    assert not gens.is_current(first) and gens.is_current(second) and gens.is_current(other)
    gens.closed = True
    assert not gens.is_current(second)
