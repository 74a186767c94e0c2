"""The main window end to end (offscreen): real model, real photos, real mouse events, no sleeps."""
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from convviz.core.images import load_image
from convviz.core.views.mosaic import channel_mosaic
from convviz.core.views.mosaic_layout import tile_maps
from convviz.ui import main_window as main_window_module
from convviz.ui.main_window import VIEWS, MainWindow
from ui_helpers import LOAD_MS, STEP_MS, view_of


def labels(predictions):
    return [p["label"] for p in predictions]


def output_of(engine, rgb, name):
    """The output of module ``name`` for this picture, by a plain forward hook (the test's oracle)."""
    import torch

    loaded = engine.loaded
    module = dict(loaded.module.named_modules())[name]
    got = []
    handle = module.register_forward_hook(lambda _m, _i, out: got.append(out.detach().clone()))
    try:
        with torch.no_grad():
            loaded.module(loaded.preprocess.to_tensor(rgb))
    finally:
        handle.remove()
    return got[0][0].numpy()


def test_opens_with_the_cat_and_top5(ready):
    session = ready.session
    assert session.image.name == "cat.jpg"
    assert session.model_info.spec == "default"
    shown = ready.predictions.predictions
    assert len(shown) == 5
    assert labels(shown)[0] in {"tabby", "tiger cat", "Egyptian cat"}
    assert ready.photo.photo.image.shape == session.image.rgb.shape
    assert ready.photo.crop_rect() is not None
    assert "EfficientNet-Lite0" in ready.status.model.text()
    assert "ms" in ready.status.forward.text()
    assert "cat.jpg" in ready.status.image.text() and "451×300" in ready.status.image.text()
    assert ready.layers_panel.model.rowCount() == len(session.model_info.rows) > 100
    assert ready.side.pred_caption.text() == "EfficientNet-Lite0 (ImageNet)"


def test_a_new_photo_is_painted_after_its_first_view_not_during_the_forward(qtbot, ready, sample_path):
    side, held = ready.side, []
    ready.session.image_loaded.connect(lambda _image: held.append(side.updatesEnabled()))
    ready.session.view_ready.connect(lambda _key, _data: held.append(side.updatesEnabled()))
    view_of(qtbot, ready, "predictions", lambda: ready.open_image(sample_path("coffee")))
    assert held[:2] == [False, False]  # held from the photo's arrival to its first view's delivery …
    qtbot.waitUntil(side.updatesEnabled, timeout=STEP_MS)  # … and painted right after it
    assert ready.photo.photo.image.shape == ready.session.image.rgb.shape


def test_a_held_side_column_paints_again_when_no_view_comes(qtbot, ready):
    ready.side.hold_ms = 20
    ready.side.hold_repaint()
    assert not ready.side.updatesEnabled()
    qtbot.waitUntil(ready.side.updatesEnabled, timeout=STEP_MS)


def test_another_image_marks_results_updating_then_replaces_them(qtbot, ready, sample_path):
    stale = []
    ready.session.views_stale.connect(lambda: stale.append(ready.side.pred_caption.text()))
    top = view_of(qtbot, ready, "predictions", lambda: ready.open_image(sample_path("coffee")))
    assert stale and stale[0].endswith("(updating…)")
    assert top.top[0]["label"] == "espresso"
    assert ready.predictions.predictions[0]["label"] == "espresso"
    assert not ready.side.pred_caption.text().endswith("(updating…)")
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
    ready.session.view_ready.connect(lambda key, d: predicted.append(d.top[0]["label"]) if key == "predictions" else 0)
    view_of(qtbot, ready, "predictions", lambda: [ready.open_image(sample_path(n))
                                                  for n in ("coffee", "rocket", "astronaut")])
    qtbot.waitUntil(lambda: not ready.session.runner.jobs, timeout=STEP_MS)
    assert landed == ["astronaut.jpg"]
    assert len(predicted) == 1
    assert ready.session.image.name == "astronaut.jpg"


def test_newest_model_request_wins_and_random_weights_are_said(qtbot, ready, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # no cached zoo weights, whatever the machine
    loaded = []
    ready.session.model_loaded.connect(lambda info: loaded.append(info.spec))
    with qtbot.waitSignal(ready.session.model_loaded, timeout=LOAD_MS):
        ready.load_model("resnet18")
        ready.load_model("squeezenet1_1")
    qtbot.waitUntil(lambda: not ready.session.runner.jobs, timeout=STEP_MS)
    assert loaded == ["squeezenet1_1"]
    assert ready.session.model_info.spec == "squeezenet1_1"
    assert "random weights" in ready.status.model.text()
    assert "untrained" in ready.side.pred_caption.text()


def test_layer_mosaic_shows_the_real_activation(qtbot, ready):
    name = "blocks.1.0.conv_dw"
    data = view_of(qtbot, ready, "layers.mosaic", lambda: ready.layers_panel.select_layer(name))
    expected = output_of(ready.session.engine, ready.session.image.rgb, name)
    assert data.shape == expected.shape
    np.testing.assert_allclose(data.mosaic, channel_mosaic(expected), atol=1e-5)
    shown = ready.layers_panel.mosaic
    tiled = tile_maps(expected, shown.stats)  # the pane-wide grid
    np.testing.assert_allclose(shown.mosaic, tiled, atol=1e-5)
    drawn = shown.image.image.astype(int)  # colour indices: 0…254 over [0, 1], gaps 255
    assert drawn.dtype.kind == "i" and np.array_equal(drawn == 255, np.isnan(tiled))
    assert np.abs(drawn[~np.isnan(tiled)] - np.nan_to_num(tiled)[~np.isnan(tiled)] * 254).max() <= 0.5 + 1e-3
    np.testing.assert_allclose(data.maximum, expected.max(axis=(1, 2)), rtol=1e-5)
    shown.select_channel(7)
    np.testing.assert_allclose(shown.channel_values(7), expected[7], rtol=1e-4, atol=1e-4)
    assert shown.values["max"].text() == f"{expected[7].max():.3g}"


def test_changing_the_view_reuses_the_cached_forward_pass(qtbot, ready):
    before = ready.session.forward_passes
    for name in ("blocks.2.0.conv_pw", "blocks.4.1.bn2", "conv_head", "classifier"):
        data = view_of(qtbot, ready, "layers.mosaic", lambda n=name: ready.layers_panel.select_layer(n))
        assert data.layer == name
    ready.conv_panel.show_real()
    view_of(qtbot, ready, "convolution.real", lambda: ready.conv_panel.real.layer_combo.setCurrentText("conv_stem"))
    assert ready.session.forward_passes == before


def test_receptive_field_box_has_the_layer_tables_size(qtbot, ready):
    name, row_index, col_index = "blocks.2.0.conv_dw", 10, 12
    row = ready.session.model_info.row(name)
    ready.conv_panel.unit_hovered.emit((name, row_index, col_index))
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
    assert f"{name}, unit ({row_index}, {col_index})" in ready.side.photo_caption.text()
    ready.conv_panel.unit_hovered.emit(None)
    assert ready.photo.field_shown() is None
    assert ready.side.photo_caption.text().startswith("cat.jpg")


def test_a_field_larger_than_the_input_is_said_so(qtbot, ready):
    ready.layers_panel.unit_hovered.emit(("conv_head", 3, 3))
    caption = ready.side.photo_caption.text()
    assert "covers the whole 224×224 input" in caption and "theoretical field is" in caption and "of it in padding" in caption


def test_a_border_unit_says_how_much_of_its_box_is_padding(qtbot, ready):
    from convviz.core.capture.unit_field import field_sentence, unit_field

    name = "blocks.2.0.conv_dw"
    row = ready.session.model_info.row(name)
    ready.layers_panel.unit_hovered.emit((name, 0, 0))
    field = unit_field(row, 0, 0, (224, 224))
    assert field.in_padding and field.seen[0][0] == 0 and field.seen_hw[0] < row.rf[0]
    caption = ready.side.photo_caption.text()
    assert caption.endswith(field_sentence(field)) and f"sees {field.seen_hw[0]}×{field.seen_hw[1]} real pixels" in caption


def hover_tile(qtbot, mosaic, channel, row, col):
    """Move the real mouse over unit (row, col) of ``channel``'s tile in the mosaic."""
    h, w = mosaic.stats.tile_hw
    _, cols = mosaic.stats.grid
    r, q = divmod(channel, cols)
    scene = mosaic.view.mapViewToScene(QPointF(q * (w + 1) + col + 0.5, r * (h + 1) + row + 0.5))
    widget = mosaic.mosaic_widget
    point = QPointF(widget.mapFromScene(scene))
    viewport = widget.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, point, viewport.mapToGlobal(point), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def test_hovering_the_mosaic_reads_a_tile_and_its_caption_does_not_outlive_it(qtbot, ready, sample_path):
    mosaic = ready.layers_panel.mosaic
    ready.set_view("layers")  # a shown pane, and units of at least a screen pixel (the mosaic fills the pane)
    view_of(qtbot, ready, "layers.mosaic", lambda: ready.layers_panel.select_layer("blocks.2.0.conv_pwl"))
    with qtbot.waitSignal(ready.layers_panel.unit_hovered, timeout=5000,
                          check_params_cb=lambda unit: unit is not None):
        hover_tile(qtbot, mosaic, 3, 4, 5)
    assert mosaic.hover.text().startswith("channel 3 · unit (4, 5)")
    assert ready.photo.field_shown() is not None
    assert "unit (4, 5)" in ready.side.photo_caption.text()
    with qtbot.waitSignal(ready.session.views_stale, timeout=STEP_MS):
        ready.open_image(sample_path("coffee"))
    assert ready.photo.field_shown() is None and mosaic.hover.text().strip() == ""
    assert "unit" not in ready.side.photo_caption.text()


def test_settings_persist_between_sessions(qtbot, make_window, settings, sample_path):
    first = make_window()
    view_of(qtbot, first, "predictions", lambda: first.start(image_path=sample_path("coffee")), LOAD_MS)
    first.set_view("layers")
    first.resize(760, 640)  # the offscreen screen is 800×800; restoreGeometry clamps to it
    first.close()
    assert settings.value("image/last_path").endswith("coffee.jpg")
    assert settings.value("model/last_spec") == "default"

    second = make_window()
    assert second.current_view() == "layers"
    assert (second.width(), second.height()) == (760, 640)
    view_of(qtbot, second, "predictions", second.start, LOAD_MS)
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


def test_trusted_model_whose_forward_fails_clears_the_old_results(qtbot, ready, tmp_path, monkeypatch):
    import torch
    from torch import nn

    path = tmp_path / "whole.pt"  # a pickled model whose Linear does not fit a 224×224 input
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 10)), path)
    asked = []
    monkeypatch.setattr(main_window_module, "confirm_pickled_model", lambda _parent, msg: asked.append(msg) or True)
    with qtbot.waitSignal(ready.session.view_failed, timeout=STEP_MS,
                          check_params_cb=lambda key, _m: key == "predictions") as blocker:
        ready.load_model(str(path))
    assert asked and "pickled" in asked[0]
    assert ready.session.model_info.title.startswith("whole.pt")
    assert ready.predictions.predictions == []
    assert ready.side.pred_caption.text().startswith("No predictions: ")
    assert "\n" not in blocker.args[1]


def test_help_lists_every_shortcut(ready):
    keys = dict(ready.shortcut_list())
    assert {"Space", "← / →", "Home / End", "Ctrl+O", "Ctrl+L"} <= set(keys)


def test_views_match_the_command_line_choices():
    from convviz import app
    from convviz.ui.registry import PANELS

    assert app.VIEWS == VIEWS == tuple(entry.name for entry in PANELS)


def test_trust_applies_to_arch_file_specs_and_torchscript_says_what_it_cannot_do(qtbot, ready, tmp_path, monkeypatch):
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.conv(x).mean(dim=(2, 3)))

    scripted = tmp_path / "tiny.pt"  # TorchScript is code, whatever its extension
    torch.jit.save(torch.jit.script(Tiny()), str(scripted))
    asked = []
    monkeypatch.setattr(main_window_module, "confirm_pickled_model", lambda _parent, msg: asked.append(msg) or True)
    with qtbot.waitSignal(ready.session.model_loaded, timeout=STEP_MS):
        ready.load_model(str(scripted))
    assert asked and "TorchScript" in asked[0]
    qtbot.waitUntil(lambda: len(ready.predictions.predictions) == 3, timeout=STEP_MS)  # it runs …
    with qtbot.waitSignal(ready.session.view_failed, timeout=STEP_MS) as blocker:
        ready.session.request_view("probe", "mosaic", "conv")  # … but shows no layers, and says why in one line
    assert "takes no hooks" in blocker.args[1] and "\n" not in blocker.args[1]

    pickled = tmp_path / "weights-with-objects.pt"  # a state dict file that also holds a pickled object
    state = {k: v for k, v in __import__("torchvision").models.resnet18(num_classes=3).state_dict().items()}
    torch.save({"state_dict": state, "extra": nn.ReLU()}, pickled)
    asked.clear()
    with qtbot.waitSignal(ready.session.model_loaded, timeout=STEP_MS) as blocker:
        ready.load_model(f"resnet18={pickled}")
    assert len(asked) == 1  # asked once; "run it" was honoured instead of asking again and again
    assert blocker.args[0].spec == f"resnet18={pickled}"


def test_a_lazy_window_builds_the_shown_tab_first_and_the_rest_on_demand(qtbot, make_window, lite0_engine, sample_path):
    """The app paints its first tab before building the others (start-up), then builds them all before
    any image or model loads; a panel built late works like one built at once."""
    from convviz.core.images import load_image
    from convviz.ui.registry import panel_names
    from convviz.workers.session import Session

    window = make_window(session=Session(engine=lite0_engine), lazy=True)
    names = panel_names()
    assert list(window.panels) == [names[0]]
    window.set_view("where")  # a tab asked for is built on the spot and shown
    assert set(window.panels) == {names[0], "where"} and window.current_view() == "where"
    assert window.current_panel() is window.panels["where"]
    window.build_all_panels()
    assert sorted(window.panels) == sorted(names) and window.current_view() == "where"
    for i, name in enumerate(names):  # every tab holds its panel, in registry order
        assert window.tabs.widget(i).widget() is window.panels[name]
    finetune, layers = window.panels["finetune"], window.panels["layers"]
    with qtbot.waitSignal(finetune.frozen_layers_changed, timeout=1000):
        finetune.frozen_layers_changed.emit(["conv_stem"])  # wired across two lazily built panels
    assert "conv_stem" in layers.tree_model.frozen
    with qtbot.waitSignal(window.session.layers_ready, timeout=60_000):
        window.session.set_image(load_image(sample_path("cat")))
        window.session.adopt_installed_model()
    qtbot.waitUntil(lambda: layers.is_ready(), timeout=60_000)
