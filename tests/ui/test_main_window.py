"""The main window end to end (offscreen): real model, real photos, no sleeps."""
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from convviz.core.mosaic import channel_mosaic
from convviz.ui import main_window as main_window_module
from convviz.ui.main_window import VIEWS, MainWindow

LOAD_MS = 180_000  # the first model load also imports torch, timm and torchvision
STEP_MS = 60_000


def labels(predictions):
    return [p["label"] for p in predictions]


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings):
    """Factory of shown windows; each is closed (workers awaited) after the test."""
    windows = []

    def make(store=None):
        window = MainWindow(settings=store if store is not None else settings)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def ready(qtbot, make_window):
    """A window showing the cat under the default model, predictions and first mosaic in."""
    window = make_window()
    with qtbot.waitSignals([window.session.predictions_ready, window.session.activation_ready], timeout=LOAD_MS):
        window.start()
    return window


def test_opens_with_the_cat_and_top5(ready):
    session = ready.session
    assert session.image.name == "cat.jpg"
    assert session.model_info.spec == "default"
    shown = ready.predictions.predictions
    assert len(shown) == 5
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(labels(shown[:3]))
    assert labels(shown)[0] in {"tabby", "tiger cat", "Egyptian cat"}
    assert ready.photo.photo.image.shape == session.image.rgb.shape
    assert ready.photo.crop_rect() is not None
    assert "EfficientNet-Lite0" in ready.status.model.text()
    assert "ms" in ready.status.forward.text()
    assert "cat.jpg" in ready.status.image.text() and "451×300" in ready.status.image.text()
    assert ready.layers_panel.model.rowCount() == len(session.model_info.rows) > 100


def test_another_image_updates_predictions(qtbot, ready, sample_path):
    with qtbot.waitSignal(ready.session.predictions_ready, timeout=STEP_MS) as blocker:
        ready.open_image(sample_path("coffee"))
    assert blocker.args[0][0]["label"] == "espresso"
    assert ready.predictions.predictions[0]["label"] == "espresso"
    assert ready.session.image.name == "coffee.jpg"
    assert "coffee.jpg" in ready.windowTitle()


@pytest.mark.parametrize("content", [b"this is not a picture\n", b""], ids=["text-as-jpg", "empty"])
def test_bad_image_shows_message_and_keeps_the_old_one(qtbot, ready, tmp_path, content):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(content)
    before = ready.photo.photo.image.copy()
    with qtbot.waitSignal(ready.session.image_failed, timeout=STEP_MS) as blocker:
        ready.open_image(str(bad))
    message = blocker.args[0]
    assert message.startswith("holiday.jpg: ") and "\n" not in message
    assert ready.last_error == message
    assert ready.error_box.text() == message
    assert message in ready.status.busy_text.text()
    assert ready.session.image.name == "cat.jpg"
    np.testing.assert_array_equal(ready.photo.photo.image, before)
    assert labels(ready.predictions.predictions)[0] in {"tabby", "tiger cat", "Egyptian cat"}


def test_bad_model_spec_shows_message_and_keeps_the_old_model(qtbot, ready):
    with qtbot.waitSignal(ready.session.model_failed, timeout=STEP_MS) as blocker:
        ready.load_model("resnt18")
    assert "resnt18" in blocker.args[0] and "resnet18" in blocker.args[0]
    assert ready.last_error == blocker.args[0]
    assert ready.session.model_info.spec == "default"
    assert ready.picker.current_spec() == "default"
    assert ready.picker.combo.findText("resnt18") < 0
    assert "EfficientNet-Lite0" in ready.status.model.text()
    assert len(ready.predictions.predictions) == 5


def test_newest_image_request_wins(qtbot, ready, sample_path):
    landed, predicted = [], []
    ready.session.image_loaded.connect(lambda image: landed.append(image.name))
    ready.session.predictions_ready.connect(lambda top, _ms: predicted.append(top[0]["label"]))
    with qtbot.waitSignal(ready.session.predictions_ready, timeout=STEP_MS):
        ready.open_image(sample_path("coffee"))
        ready.open_image(sample_path("rocket"))
        ready.open_image(sample_path("astronaut"))
    qtbot.waitUntil(lambda: not ready.session._jobs, timeout=STEP_MS)
    assert landed == ["astronaut.jpg"]
    assert len(predicted) == 1
    assert ready.session.image.name == "astronaut.jpg"


def test_newest_model_request_wins(qtbot, ready):
    loaded = []
    ready.session.model_loaded.connect(lambda info: loaded.append(info.spec))
    with qtbot.waitSignal(ready.session.model_loaded, timeout=STEP_MS):
        ready.load_model("resnet18")
        ready.load_model("squeezenet1_1")
    qtbot.waitUntil(lambda: not ready.session._jobs, timeout=STEP_MS)
    assert loaded == ["squeezenet1_1"]
    assert ready.session.model_info.spec == "squeezenet1_1"
    assert "random weights" in ready.status.model.text()


def test_layer_mosaic_shows_the_real_activation(qtbot, ready):
    name = "blocks.1.0.conv_dw"
    with qtbot.waitSignal(ready.session.activation_ready, timeout=STEP_MS,
                          check_params_cb=lambda n, *_: n == name) as blocker:
        assert ready.layers_panel.select_layer(name)
    _, mosaic, shape, stats = blocker.args
    engine = ready.session.engine
    with engine.lock:
        capture, _ = engine.capture(ready.session._image_key, ready.session.image.rgb)
    expected = capture.output_array(name)
    assert shape == expected.shape
    np.testing.assert_allclose(mosaic, channel_mosaic(expected), atol=1e-6)
    shown = ready.layers_panel.mosaic
    np.testing.assert_allclose(shown.image.image, channel_mosaic(expected), atol=1e-6)
    np.testing.assert_allclose(stats.maximum, expected.max(axis=(1, 2)), rtol=1e-6)
    shown.select_channel(7)
    np.testing.assert_allclose(shown.channel_values(7), expected[7], rtol=1e-4, atol=1e-4)
    assert shown.values["max"].text() == f"{expected[7].max():.3g}"


def test_changing_the_view_reuses_the_cached_forward_pass(qtbot, ready):
    assert ready.session.forward_passes == 1
    for name in ("blocks.2.0.conv_pw", "blocks.4.1.bn2", "conv_head", "classifier"):
        with qtbot.waitSignal(ready.session.activation_ready, timeout=STEP_MS,
                              check_params_cb=lambda n, *_, want=name: n == want):
            ready.layers_panel.select_layer(name)
    with qtbot.waitSignal(ready.session.conv_data_ready, timeout=STEP_MS):
        ready.session.request_conv_layer("blocks.1.0.conv_dw")
    assert ready.session.forward_passes == 1


def test_receptive_field_box_has_the_layer_tables_size(qtbot, ready):
    name, row_index, col_index = "blocks.2.0.conv_dw", 10, 12
    row = ready.session.model_info.row(name)
    ready.conv_panel.receptive_field_hovered.emit((name, row_index, col_index))
    box = ready.photo.field_shown()
    width, height = ready.session.image.size
    p = ready.session.model_info.preprocess
    left, top, right, _ = p.crop_box(width, height)
    scale = (right - left) / p.input_size
    assert box.width() == pytest.approx(row.rf[1] * scale)
    assert box.height() == pytest.approx(row.rf[0] * scale)
    centre_x = left + (row.start[1] + col_index * row.jump[1] + 0.5) * scale
    assert box.center().x() == pytest.approx(centre_x)
    assert f"RF {int(row.rf[0])}×{int(row.rf[1])}" in ready.photo.field_label.textItem.toPlainText()
    assert f"{name}, unit ({row_index}, {col_index})" in ready.photo_caption.text()
    ready.conv_panel.receptive_field_hovered.emit(None)
    assert ready.photo.field_shown() is None
    assert ready.photo_caption.text().startswith("cat.jpg")


def test_hovering_the_mosaic_reads_a_tile_and_draws_its_field(qtbot, ready):
    mosaic = ready.layers_panel.mosaic
    stats = mosaic.stats
    h, w = stats.tile_hw
    target = 3
    _, cols = stats.grid
    r, q = divmod(target, cols)
    point = mosaic.view.mapViewToScene(QPointF(q * (w + 1) + 5.5, r * (h + 1) + 4.5))
    mosaic._on_mouse_moved(point)
    assert mosaic.hover.text().startswith(f"channel {target} · unit (4, 5)")
    assert ready.photo.field_shown() is not None


def test_settings_persist_between_sessions(qtbot, make_window, settings, sample_path):
    first = make_window()
    with qtbot.waitSignal(first.session.predictions_ready, timeout=LOAD_MS):
        first.start(image_path=sample_path("coffee"))
    first.set_view("layers")
    first.resize(760, 640)  # the offscreen screen is 800×800; restoreGeometry clamps to it
    first.close()
    assert settings.value("image/last_path").endswith("coffee.jpg")
    assert settings.value("model/last_spec") == "default"

    second = make_window()
    assert second.current_view() == "layers"
    assert (second.width(), second.height()) == (760, 640)
    with qtbot.waitSignal(second.session.predictions_ready, timeout=LOAD_MS):
        second.start()
    assert second.session.image.name == "coffee.jpg"
    assert second.session.model_info.spec == "default"


def test_paste_and_drop_open_images(qtbot, ready, sample_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = (255, 0, 0)
    image = QImage(rgb.data, 60, 40, 180, QImage.Format.Format_RGB888).copy()
    QApplication.clipboard().setImage(image)
    with qtbot.waitSignal(ready.session.image_loaded, timeout=STEP_MS) as blocker:
        ready.paste_image()
    pasted = blocker.args[0]
    assert pasted.name == "pasted image" and pasted.size == (60, 40)
    np.testing.assert_array_equal(pasted.rgb, rgb)

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(sample_path("rocket"))])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(ready.session.image_loaded, timeout=STEP_MS) as blocker:
        ready.dropEvent(event)
    assert blocker.args[0].name == "rocket.jpg"


def test_exports_window_and_mosaic(ready, tmp_path):
    from PIL import Image

    assert ready.export_window(str(tmp_path / "window.png"))
    assert Image.open(tmp_path / "window.png").size == (ready.width(), ready.height())
    assert ready.export_mosaic(str(tmp_path / "mosaic.png"))
    mosaic = ready.layers_panel.mosaic.mosaic
    assert Image.open(tmp_path / "mosaic.png").size == (mosaic.shape[1], mosaic.shape[0])


def test_pickled_model_needs_explicit_trust(qtbot, ready, tmp_path, monkeypatch):
    import torch
    from torch import nn

    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, 10)), path)
    asked = []
    monkeypatch.setattr(main_window_module, "confirm_pickled_model", lambda _parent, msg: asked.append(msg) or True)
    with qtbot.waitSignal(ready.session.model_loaded, timeout=STEP_MS) as blocker:
        ready.load_model(str(path))
    assert asked and "pickled" in asked[0]
    assert blocker.args[0].title.startswith("whole.pt")
    assert blocker.args[0].conv_layers == ("0",)


def test_views_match_the_command_line_choices():
    from convviz import app

    assert app.VIEWS == VIEWS
