"""Session: background work, stale results dropped, plain data out, clean shutdown."""
import numpy as np
import pytest

from convviz.core.images import LoadedImage
from convviz.workers.results import ChannelStats, Generations
from convviz.workers.session import Session

LOAD_MS = 180_000
STEP_MS = 60_000


@pytest.fixture
def session(qtbot):
    made = Session()
    yield made
    made.shutdown()


@pytest.fixture
def loaded(qtbot, session, sample_path):
    with qtbot.waitSignals([session.model_loaded, session.predictions_ready], timeout=LOAD_MS):
        session.load_model("default")
        session.open_image(sample_path("cat"))
    return session


def test_results_are_plain_data(qtbot, loaded):
    info = loaded.model_info
    assert not hasattr(info, "module")
    with qtbot.waitSignal(loaded.activation_ready, timeout=STEP_MS) as blocker:
        loaded.request_layer("blocks.3.0.conv_pw")
    name, mosaic, shape, stats = blocker.args
    assert name == "blocks.3.0.conv_pw" and isinstance(mosaic, np.ndarray) and isinstance(stats, ChannelStats)
    assert shape == (240, 28, 28) == mosaic_shape_source(info, name)
    with qtbot.waitSignal(loaded.conv_data_ready, timeout=STEP_MS) as blocker:
        loaded.request_conv_layer("blocks.1.0.conv_dw")
    data = blocker.args[0]
    assert isinstance(data.input, np.ndarray) and isinstance(data.weight, np.ndarray)
    assert data.rf == info.row("blocks.1.0.conv_dw").rf


def mosaic_shape_source(info, name):
    return info.row(name).out_shape


def test_newest_layer_request_wins(qtbot, loaded):
    names = []
    loaded.activation_ready.connect(lambda name, *_: names.append(name))
    with qtbot.waitSignal(loaded.activation_ready, timeout=STEP_MS):
        loaded.request_layer("conv_stem")
        loaded.request_layer("blocks.2.1.conv_dw")
    qtbot.waitUntil(lambda: not loaded._jobs, timeout=STEP_MS)
    assert names == ["blocks.2.1.conv_dw"]


def test_image_change_rerenders_the_chosen_layer(qtbot, loaded, sample_path):
    with qtbot.waitSignal(loaded.activation_ready, timeout=STEP_MS):
        loaded.request_layer("conv_stem")
    with qtbot.waitSignals([loaded.predictions_ready, loaded.activation_ready], timeout=STEP_MS):
        loaded.open_image(sample_path("coffee"))
    assert loaded.forward_passes == 2


def test_set_image_uses_an_in_memory_picture(qtbot, loaded):
    picture = LoadedImage(rgb=np.full((50, 80, 3), 128, np.uint8), source="pasted image", original_mode="RGB")
    with qtbot.waitSignal(loaded.predictions_ready, timeout=STEP_MS):
        loaded.set_image(picture)
    assert loaded.image is picture


def test_missing_file_fails_with_one_line(qtbot, session, tmp_path):
    with qtbot.waitSignal(session.image_failed, timeout=STEP_MS) as blocker:
        session.open_image(str(tmp_path / "gone.png"))
    assert blocker.args == ["gone.png: no such file"]


def test_shutdown_during_a_model_load_leaves_nothing_running(qtbot, sample_path):  # qtbot: the thread checks
    session = Session()
    delivered = []
    session.model_loaded.connect(delivered.append)
    session.load_model("default")
    session.open_image(sample_path("cat"))
    assert session.shutdown()
    assert not session._jobs and not delivered
    session.load_model("resnet18")  # a closed session starts nothing
    assert not session._jobs


def test_generations_mark_older_tickets_stale():
    gens = Generations()
    first, second = gens.next("image"), gens.next("image")
    other = gens.next("model")
    assert not gens.is_current(first) and gens.is_current(second) and gens.is_current(other)
    gens.closed = True
    assert not gens.is_current(second)


def test_channel_stats_find_the_tile_under_a_point():
    stats = ChannelStats(np.zeros(5), np.ones(5), np.zeros(5), tile_hw=(4, 6), gap=1)
    assert stats.grid == (3, 2)  # 3 rows of 2 tiles, each 4 high and 6 wide, 1-pixel gaps
    assert stats.tile_at(0, 0) == 0
    assert stats.tile_at(1, 7) == 1
    assert stats.tile_at(4, 0) is None  # the gap row
    assert stats.tile_at(10, 0) == 4
    assert stats.tile_at(10, 7) is None  # tile 5 does not exist
    assert stats.tile_at(0, 14) is None  # right of the last column
