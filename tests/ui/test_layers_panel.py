"""The Layers panel end to end: real clicks, keys and mouse moves; every number against torch's own forward."""
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from convviz.core.images import load_image
from convviz.core.capture.layer_table import LayerRow
from convviz.ui.layers.panel import LayersPanel
from convviz.ui.main_window import MainWindow
from convviz.workers.session import Session

LOAD_MS, STEP_MS = 180_000, 60_000


@pytest.fixture
def window(qtbot, tmp_path, lite0_engine, sample_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(session=Session(engine=lite0_engine), settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.set_view("layers")
    with qtbot.waitSignal(win.layers_panel.ready, timeout=LOAD_MS):
        win.session.set_image(load_image(sample_path("cat")))
        win.session.adopt_installed_model()
    yield win
    win.close()
    assert win.session.shutdown(60.0)


def oracle(window, name):
    """Output of module ``name`` for the current photo from a plain forward hook."""
    import torch

    loaded = window.session.engine.loaded
    module = dict(loaded.module.named_modules())[name]
    got = []
    handle = module.register_forward_hook(lambda _m, _i, out: got.append(out.detach().clone()))
    try:
        with torch.no_grad():
            logits = loaded.module(loaded.preprocess.to_tensor(window.session.image.rgb))
    finally:
        handle.remove()
    return got[0][0].numpy(), logits[0].numpy()


def pick(qtbot, window, name):
    """Select ``name`` through the panel and wait for its mosaic (and bars) to be shown."""
    panel = window.layers_panel
    if panel.current == name and panel.is_ready():
        return panel
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        panel.select_layer(name)
    return panel


def move_mouse(widget, point):
    viewport = widget.viewport()
    QApplication.sendEvent(viewport, QMouseEvent(
        QEvent.Type.MouseMove, QPointF(point), viewport.mapToGlobal(QPointF(point)), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def unit_point(mosaic, channel, row, col):
    y, x = mosaic.stats.origin(channel)
    scene = mosaic.view.mapViewToScene(QPointF(x + col + 0.5, y + row + 0.5))
    return mosaic.mosaic_widget.mapFromScene(scene)


def hover(qtbot, panel, mosaic, channel, row, col):
    """Move the real mouse onto a unit until the panel reports it (pyqtgraph drops moves < 1/60 s apart)."""
    seen = []
    panel.unit_hovered.connect(seen.append)
    target = (mosaic.name, row, col)
    try:
        qtbot.waitUntil(lambda: move_mouse(mosaic.mosaic_widget, unit_point(mosaic, channel, row, col))
                        or bool(seen and seen[-1] == target), timeout=5000)
    finally:
        panel.unit_hovered.disconnect(seen.append)


def test_tree_order_pass_through_toggle_and_dropout_note(qtbot):
    panel = LayersPanel()
    qtbot.addWidget(panel)
    rows = [LayerRow("conv", "Conv2d", (4, 8, 8), kernel=(3, 3), stride=(2, 2), padding=(1, 1), rf=(3, 3)),
            LayerRow("block.act", "ReLU", (4, 8, 8)), LayerRow("block.drop", "Dropout", (4, 8, 8)),
            LayerRow("block", "Sequential", (4, 8, 8)), LayerRow("fc", "Linear", (10,))]
    panel.set_rows(rows)
    assert panel.model.rowCount() == 5
    assert [r.name for r in panel.model.rows] == ["conv", "block", "block.act", "block.drop", "fc"]
    proxy = panel.proxy
    block = proxy.index(1, 0)
    assert proxy.data(block) == "block" and proxy.rowCount(block) == 1  # the Dropout is hidden
    assert proxy.data(proxy.index(0, 3)) == "3×3 / 2 / 1"
    panel.hide_box.setChecked(False)
    block = proxy.index(1, 0)
    assert [proxy.data(proxy.index(i, 0, block)) for i in range(proxy.rowCount(block))] == ["act", "drop"]
    drop = proxy.index(1, 0, block)
    assert "off at inference" in proxy.data(proxy.index(1, 1, block))
    assert "does nothing at inference" in proxy.data(drop, Qt.ItemDataRole.ToolTipRole)
    panel.hide_box.setChecked(True)
    assert panel.select_layer("block.drop") and not panel.hide_box.isChecked()  # asked for: shown


def test_click_a_layer_then_step_with_the_keyboard(qtbot, window):
    panel = window.layers_panel
    tree = panel.tree
    name = "blocks.1.0.conv_dw"
    index = panel.proxy.mapFromSource(panel.tree_model.index_of(name))
    tree.scrollTo(index)
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualRect(index).center())
    assert panel.current == name
    expected, _ = oracle(window, name)
    np.testing.assert_array_equal(panel.mosaic.maps, expected)
    assert panel.mosaic.title.text().startswith(f"{name} · Conv2dSame · 96 channels of 56×56")
    tree.setFocus()
    following = panel.model.tree.step(name, 1, skip_pass_through=True)
    assert following == "blocks.1.0.bn2"  # the container first, then its act: bn2.drop is hidden
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        QTest.keyClick(tree, Qt.Key.Key_Down)
    assert panel.current == following
    np.testing.assert_allclose(panel.mosaic.maps, oracle(window, following)[0], rtol=1e-5, atol=1e-5)
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        assert panel.step_layer(-1) == name


def test_click_a_channel_and_hover_a_unit(qtbot, window):
    name = "blocks.2.0.conv_pwl"  # 40 channels of 28×28: units larger than a screen pixel
    panel = pick(qtbot, window, name)
    mosaic = panel.mosaic
    expected, _ = oracle(window, name)
    point = unit_point(mosaic, 13, 2, 3)
    QTest.mouseClick(mosaic.mosaic_widget.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert mosaic.spin.value() == 13
    np.testing.assert_array_equal(mosaic.channel.image.image, expected[13])
    assert mosaic.values["max"].text() == f"{expected[13].max():.3g}"
    hover(qtbot, panel, mosaic, 13, 14, 12)  # a central unit: its whole field on the photo
    assert mosaic.hover.text().startswith(f"channel 13 · unit (14, 12): value {expected[13, 14, 12]:.3g}")
    crop, box = window.photo.crop_rect(), window.photo.field_shown()
    assert box is not None and crop.contains(box) and window.photo.field_in_padding() is None
    # a corner unit's field reaches past the input: clipped to it, the rest shown as padding
    hover(qtbot, panel, mosaic, 13, 0, 0)
    box, whole = window.photo.field_shown(), window.photo.field_in_padding()
    assert crop.contains(box) and whole is not None and not crop.contains(whole)
    assert box.topLeft() == crop.topLeft()
    assert "padding" in window.photo.field_label.textItem.toPlainText()


def test_scale_and_order_toggles(qtbot, window):
    name = "blocks.1.0.bn1"
    panel = pick(qtbot, window, name)
    mosaic = panel.mosaic
    expected, _ = oracle(window, name)
    mosaic.scale_combo.setCurrentIndex(1)  # whole layer
    lo, hi = expected.min(), expected.max()
    np.testing.assert_allclose(mosaic.tile(5), (expected[5] - lo) / (hi - lo), atol=1e-5)
    assert "share the layer's range" in mosaic.scale_note.text()
    mosaic.order_combo.setCurrentIndex(2)  # max, largest first
    peaks = expected.reshape(len(expected), -1).max(axis=1)
    first = mosaic.stats.tile_at(0, 0)
    assert first == int(np.argmax(peaks))
    np.testing.assert_allclose(np.nanmax(mosaic.tile(first)), 1.0 if peaks[first] == hi else (peaks[first] - lo) / (hi - lo),
                               atol=1e-5)
    assert mosaic.stats.origin(first) == (0, 0)
    mosaic.order_combo.setCurrentIndex(0)
    mosaic.scale_combo.setCurrentIndex(0)
    assert mosaic.stats.tile_at(0, 0) == 0


def test_classifier_as_bars_with_class_names_and_ranks(qtbot, window):
    panel = pick(qtbot, window, "classifier")
    assert panel.stack.currentWidget() is panel.vector
    _, logits = oracle(window, "classifier")
    bars = panel.vector
    np.testing.assert_allclose(bars.bars.yData, logits, rtol=1e-4, atol=1e-4)
    top = int(np.argmax(logits))
    label = window.session.engine.loaded.label_names(1000)[top]
    assert label == window.predictions.predictions[0]["label"]
    assert f"1.</td><td>{label}" in bars.top_list.text()
    assert bars.describe(top).startswith(f"class {top} “{label}”") and "rank 1 of 1000" in bars.describe(top)
    bars.sort_box.setChecked(True)
    assert bars.bars.yData[0] == pytest.approx(logits.max(), rel=1e-4)
    assert not panel.labs.isVisible() or not panel.labs.isTabEnabled(0)  # no map to enlarge


def test_first_layer_filters_beside_the_first_conv(qtbot, window):
    panel = pick(qtbot, window, "conv_stem")
    filters = panel.filters
    qtbot.waitUntil(lambda: filters.data is not None, timeout=STEP_MS)
    assert panel.labs.tab_name() == "filters"
    stem = window.session.engine.loaded.module.conv_stem
    np.testing.assert_array_equal(filters.data.weights, stem.weight.detach().numpy())
    assert filters.sheet.image.shape[2] == 3
    filters.select(9)
    assert filters.weights.text().startswith("filter 9\nR:")
    filters.channel_requested.emit(9)
    assert panel.mosaic.spin.value() == 9
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        panel.select_layer("blocks.0.0.conv_dw")
    assert not panel.labs.isTabEnabled(panel.labs.indexOf(filters)) and panel.labs.tab_name() == "channel"


def test_exports_and_overlay(qtbot, window, tmp_path):
    from PIL import Image

    name = "blocks.1.0.conv_pwl"
    panel = pick(qtbot, window, name)
    expected, _ = oracle(window, name)
    panel.mosaic.select_channel(4)
    assert panel.exports.export_values(str(tmp_path / "v.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), expected, rtol=1e-5, atol=1e-5)
    assert panel.exports.export_mosaic(str(tmp_path / "m.png"))
    assert Image.open(tmp_path / "m.png").size == panel.mosaic.mosaic.shape[::-1]
    assert panel.exports.export_channel(str(tmp_path / "c.png"))
    channel = np.asarray(Image.open(tmp_path / "c.png"))
    assert channel.shape == (224, 224, 3)  # 56×56 enlarged 4× (nearest)
    lut = panel.mosaic.lut
    peak = np.unravel_index(np.argmax(expected[4]), expected[4].shape)
    assert tuple(channel[peak[0] * 4, peak[1] * 4]) == tuple(lut[255])
    assert not panel.exports.export_values(str(tmp_path / "missing" / "v.npy"))
    view = panel.mosaic.channel
    view.overlay.setChecked(True)
    assert view.photo.isVisible() and view.photo.image.shape == (224, 224, 3)
    row = window.session.model_info.row(name)
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.width() == pytest.approx(56 * row.jump[1])  # 56 units × 4 px: the whole input
    view.overlay.setChecked(False)


class ReluLab(QWidget):
    """A minimal lab: applies to ReLU6 layers, remembers what it was told."""

    def __init__(self):
        super().__init__()
        self.told = []

    def set_layer(self, name, row):
        self.told.append(name)

    def applies_to(self, row):
        return row is not None and row.type == "ReLU6"


def test_lab_host_api_and_lab_wishes(qtbot, window):
    panel = window.layers_panel
    lab = ReluLab()
    panel.add_lab("minimal", "Minimal", lab)
    assert lab.told == [panel.current] and "minimal" in panel.labs.lab_names() and "relu" in panel.labs.lab_names()
    assert not panel.labs.select("minimal")  # conv_stem is not a ReLU
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        panel.show_on_load(lab="minimal")
    assert panel.current == "bn1.act" and panel.labs.tab_name() == "minimal" and lab.told[-1] == "bn1.act"
    with qtbot.waitSignal(panel.failed, timeout=5000) as blocker:
        panel.show_on_load(layer="no.such.layer")
    assert blocker.args[0].startswith("--layer no.such.layer: no such layer")
    with qtbot.waitSignal(panel.failed, timeout=5000) as blocker:
        panel.show_on_load(lab="nosuch")
    assert blocker.args[0].startswith("--lab nosuch: no such lab") and "\n" not in blocker.args[0]
    with pytest.raises(ValueError):
        panel.add_lab("minimal", "again", ReluLab())


def test_layers_frozen_by_the_fine_tune_choice_are_marked(qtbot, window):
    panel = window.layers_panel
    window.panels["finetune"].frozen_layers_changed.emit(["conv_stem", "blocks.0"])
    model = panel.tree_model

    def text(name):
        return model.data(model.index_of(name), Qt.ItemDataRole.DisplayRole)

    assert text("conv_stem").endswith("❄") and text("blocks.0.0.conv_dw").endswith("❄")  # inside a frozen block
    assert not text("conv_head").endswith("❄")
    window.panels["finetune"].frozen_layers_changed.emit([])
    assert not text("conv_stem").endswith("❄")
