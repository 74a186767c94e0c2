"""The lab widgets on the shared Lite0 and the cat: what they show is torch's own result.

Oracles are plain forward hooks on the model and torch's functional ops (F.relu6,
F.max_pool2d, F.avg_pool2d, F.lp_pool2d, F.dropout, the module's own weights); changing a
lab's arguments must re-render without a new forward pass.
"""
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from convviz.core.images import load_image
from convviz.ui.labs import LAB_WIDGETS, DropoutLab, PointwiseLab, PoolLab, ReluLab
from convviz.workers.session import Session
from ui_helpers import STEP_MS

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture
def session(qtbot, lite0_engine, sample_path):
    s = Session(engine=lite0_engine)
    s.set_image(load_image(sample_path("cat")))
    s.adopt_installed_model()
    yield s
    assert s.shutdown(60.0)


def hooked(engine, rgb, name):
    """(input, output) of module ``name`` for this picture, by a plain forward hook (batch item 0)."""
    loaded = engine.loaded
    module = dict(loaded.module.named_modules())[name]
    inputs, outputs = [], []
    # the input is cloned before the module runs: an in-place activation would overwrite it
    pre = module.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].clone()))
    post = module.register_forward_hook(lambda _m, _args, out: outputs.append(out.clone()))
    try:
        with torch.no_grad():
            loaded.module(loaded.preprocess.to_tensor(rgb))
    finally:
        pre.remove()
        post.remove()
    return inputs[0][0], outputs[0][0]


def make_lab(qtbot, cls, session):
    lab = cls()
    qtbot.addWidget(lab)
    lab.resize(900, 600)
    lab.show()
    lab.bind(session)
    return lab


def rows_of(session):
    return {r.name: r for r in session.model_info.rows}


def show_layer(qtbot, lab, session, name):
    with qtbot.waitSignal(lab.ready, timeout=STEP_MS):
        lab.set_layer(name, rows_of(session)[name], rows_of(session)[name].type)
    assert lab.is_ready()
    return lab.data


def rerender(qtbot, lab, action):
    """Run ``action`` (a change of lab arguments) and wait for the new rendering."""
    with qtbot.waitSignal(lab.ready, timeout=STEP_MS):
        action()
    return lab.data


def shown(cell):
    return np.asarray(cell.image.image)


def hover(grid, cell, row, col):
    scene = cell.view.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    point = QPointF(grid.mapFromScene(scene))
    viewport = grid.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, point, viewport.mapToGlobal(point), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def test_registry_names_are_the_core_labs():
    from convviz.core.labs.views import LABS

    assert tuple(name for name, _, _ in LAB_WIDGETS) == LABS
    assert [cls for _, _, cls in LAB_WIDGETS] == [ReluLab, PoolLab, DropoutLab, PointwiseLab]


def test_each_widget_applies_where_the_core_says(qtbot, session, lite0_engine):
    """One rule (core.lab_names): every lab tab is enabled exactly where the core's lab_for, given the
    module, offers that lab, on every layer of Lite0; the Layers panel's --lab layer is the core's."""
    from convviz.core.labs.names import first_row_for_lab
    from convviz.core.labs.views import first_layer_for_lab, lab_for

    modules = dict(lite0_engine.loaded.module.named_modules())
    widgets = [make_lab(qtbot, cls, session) for _, _, cls in LAB_WIDGETS]
    rows = session.model_info.rows
    for row in rows:
        core = lab_for(row, modules.get(row.name.split(":")[0]))
        assert tuple(w.NAME for w in widgets if w.applies_to(row)) == core, row.name
    for widget in widgets:
        first = first_row_for_lab(rows, widget.NAME)
        assert first == first_layer_for_lab(rows, widget.NAME) and widget.applies_to(rows_of(session)[first])


def test_which_layers_each_lab_applies_to(qtbot, session):
    rows = rows_of(session)
    relu, pool, drop, pw = (make_lab(qtbot, cls, session) for cls in (ReluLab, PoolLab, DropoutLab, PointwiseLab))
    assert relu.applies_to(rows["bn1"], "BatchNormAct2d")  # fused BN + ReLU6
    assert relu.applies_to(rows["bn1.act"])
    assert not relu.applies_to(rows["blocks.1.0.bn3"])  # its act is Identity
    assert not relu.applies_to(rows["conv_stem"])
    assert pw.applies_to(rows["blocks.1.0.conv_pwl"]) and not pw.applies_to(rows["conv_stem"])
    assert not pw.applies_to(rows["blocks.1.0.conv_dw"])  # 3×3 depthwise
    vector = next(r for r in rows.values() if r.name == "classifier")
    assert pool.applies_to(rows["conv_stem"]) and not pool.applies_to(vector)
    assert drop.applies_to(vector) and drop.applies_to(rows["conv_head"])
    relu.set_layer("conv_stem", rows["conv_stem"])  # not applicable: one line, no request
    assert relu.is_ready() and relu.message.isVisible() and "\n" not in relu.message.text()
    assert session.subscription(relu.key) is None


def test_relu_lab_on_batchnorm_act_shows_torchs_relu6(qtbot, session):
    lab = make_lab(qtbot, ReluLab, session)
    d = show_layer(qtbot, lab, session, "bn1")
    pre, _ = hooked(session.engine, session.image.rgb, "bn1.act")  # what the fused ReLU6 received
    out = F.relu6(pre)
    share = float((out == 0).float().mean())
    assert d.function == "ReLU6" and d.zero_share == pytest.approx(share, abs=1e-9)
    assert f"{100 * share:.1f}% of the layer's" in lab.summary.text()
    np.testing.assert_allclose(shown(lab.inp), pre[0].numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(shown(lab.out), out[0].numpy(), rtol=0, atol=1e-5)
    counts = np.histogram(out.numpy(), d.bin_edges)[0]
    np.testing.assert_array_equal(lab.hist_out.yData, counts)  # the true counts, on a log axis
    _, drawn = lab.hist_out.getData()  # what the log axis shows: log10(count), nothing for an empty bin
    assert (counts == 0).any() and not np.isfinite(drawn[counts == 0]).any()
    np.testing.assert_allclose(10 ** drawn[counts > 0], counts[counts > 0], rtol=1e-9)
    np.testing.assert_allclose(lab.curve.yData, F.relu6(torch.as_tensor(lab.curve.xData)).numpy(), atol=1e-6)
    passes = session.forward_passes
    d3 = rerender(qtbot, lab, lambda: lab.channel.setValue(3))
    assert session.forward_passes == passes and d3.channel == 3
    np.testing.assert_allclose(shown(lab.out), out[3].numpy(), rtol=0, atol=1e-5)
    zero3 = float((out[3] == 0).float().mean())
    assert f"{100 * zero3:.1f}% exactly 0" in lab.out.label.text
    units = []
    lab.unit_hovered.connect(units.append)
    hover(lab.grid, lab.out, 7, 11)
    assert units[-1] == ("bn1", 7, 11)
    assert f"({7}, {11})" in lab.hover.text()


def test_pool_lab_maps_are_torchs_and_settings_do_not_rerun_the_model(qtbot, session):
    lab = make_lab(qtbot, PoolLab, session)
    d = show_layer(qtbot, lab, session, "conv_stem")
    _, y = hooked(session.engine, session.image.rgb, "conv_stem")
    x = y[None, 0:1]
    assert (d.kernel, d.stride, d.padding) == (2, 2, 0) and d.source == "output"
    np.testing.assert_allclose(shown(lab.stage.cells["max"]), F.max_pool2d(x, 2, 2)[0, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(shown(lab.stage.cells["avg"]), F.avg_pool2d(x, 2, 2)[0, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(shown(lab.stage.cells["l2"]), F.lp_pool2d(x, 2, 2, 2)[0, 0].numpy(), rtol=1e-4,
                               atol=1e-4)
    assert "112×112 → <b>56×56</b>" in lab.sizes.text() and "75% fewer activations" in lab.sizes.text()
    assert lab.stage.cells["l2"].label.text == "L2 √Σx² → 56×56"
    passes = session.forward_passes
    d = rerender(qtbot, lab, lambda: lab.set_settings(kernel=3, stride=2, padding=1, channel=5))
    assert session.forward_passes == passes
    x = y[None, 5:6]
    want = F.max_pool2d(x, 3, 2, 1)[0, 0].numpy()
    assert d.out_shape[1:] == want.shape
    np.testing.assert_allclose(shown(lab.stage.cells["max"]), want, atol=1e-5)
    np.testing.assert_allclose(shown(lab.stage.cells["avg"]), F.avg_pool2d(x, 3, 2, 1)[0, 0].numpy(), atol=1e-5)
    assert d.l2_map is None and lab.stage.cells["l2"].label.text == "no L2 at padding 1"
    rerender(qtbot, lab, lambda: lab.kernel.setValue(4))  # one spin box: one request
    assert lab.data.kernel == 4 and session.forward_passes == passes


def test_pool_lab_transport_slides_the_window_and_exports_a_gif(qtbot, session, tmp_path):
    from PIL import Image

    lab = make_lab(qtbot, PoolLab, session)
    show_layer(qtbot, lab, session, "conv_stem")
    d = rerender(qtbot, lab, lambda: lab.set_settings(kernel=16, stride=16, padding=0))
    assert lab.player.frame_count() == d.frames == 7 * 7
    lab.player.set_frame(0)
    first = lab.stage.cells["input"].box.rect()
    lab.player.step(1)
    assert lab.stage.frame == 1
    moved = lab.stage.cells["input"].box.rect()
    assert moved.left() - first.left() == pytest.approx(16) and moved.top() == pytest.approx(first.top())
    assert lab.stage.cells["max"].box.rect().left() == pytest.approx(1)
    top, left = d.window(1)[:2]
    window = d.input_map[top: top + 16, left: left + 16]
    assert f"max = <b>{float(window.max()):.4g}</b>" in lab.stage.readout.text()
    lab.player.set_frame(8)  # second row of windows
    assert lab.stage.cells["input"].box.rect().top() == pytest.approx(16)
    gif = tmp_path / "pool.gif"
    assert lab.player.export_gif(str(gif), fps=10, max_frames=12) == 12
    with Image.open(gif) as picture:
        assert picture.format == "GIF" and picture.n_frames == 12
    png = tmp_path / "frame.png"
    assert lab.player.export_frame_png(str(png)) and png.stat().st_size > 0


def test_pool_lab_refusal_is_one_line(qtbot, session):
    lab = make_lab(qtbot, PoolLab, session)
    show_layer(qtbot, lab, session, "conv_head")  # 7×7
    with qtbot.waitSignal(session.view_failed, timeout=STEP_MS):
        lab.set_settings(kernel=9, stride=1, padding=0)
    assert lab.message.isVisible() and "\n" not in lab.message.text() and lab.message.text()


def test_dropout_lab_mask_scale_and_means_are_torchs(qtbot, session):
    lab = make_lab(qtbot, DropoutLab, session)
    d = show_layer(qtbot, lab, session, "conv_head")
    _, y = hooked(session.engine, session.image.rgb, "conv_head")
    torch.manual_seed(0)
    out = F.dropout(y, 0.5, training=True)
    np.testing.assert_allclose(shown(lab.out), out[0].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(shown(lab.mask) > 0.5, (out[0] != 0).numpy())
    assert d.mean_before == pytest.approx(float(y.mean()), rel=1e-5)
    assert d.mean_after == pytest.approx(float(out.mean()), rel=1e-5)
    assert f"{float(out.mean()):.5f}" in lab.stats.text() and "1/(1−p) = 1/0.5 = 2" in lab.stats.text()
    dropped = float((out == 0).float().mean())
    assert f"dropped <b>{100 * dropped:.1f}%</b>" in lab.stats.text()
    passes = session.forward_passes
    d = rerender(qtbot, lab, lambda: lab.set_p(0.2))
    assert session.forward_passes == passes and d.p == pytest.approx(0.2)
    torch.manual_seed(0)
    out = F.dropout(y, 0.2, training=True)
    np.testing.assert_allclose(shown(lab.out), out[0].numpy(), rtol=1e-6, atol=1e-6)
    assert f"{float(out.mean()):.5f}" in lab.stats.text()
    d = rerender(qtbot, lab, lambda: lab.set_train(False))
    assert d.identity and session.forward_passes == passes
    np.testing.assert_array_equal(shown(lab.out), y[0].numpy())
    assert "identity" in lab.out.label.text and "does nothing at inference" in lab.stats.text()


def test_dropout_lab_kinds_are_torchs(qtbot, session):
    lab = make_lab(qtbot, DropoutLab, session)
    show_layer(qtbot, lab, session, "conv_head")
    _, y = hooked(session.engine, session.image.rgb, "conv_head")
    reference = {"Dropout2d": lambda: F.dropout2d(y[None], 0.5, training=True)[0],
                 "AlphaDropout": lambda: F.alpha_dropout(y, 0.5, training=True),
                 "FeatureAlphaDropout": lambda: F.feature_alpha_dropout(y[None], 0.5, training=True)[0]}
    for kind, fn in reference.items():
        d = rerender(qtbot, lab, lambda k=kind: lab.kind.setCurrentIndex(lab.kind.findData(k)))
        torch.manual_seed(0)
        out = fn()
        assert d.kind == kind and lab.title.text().startswith(f"conv_head: {kind}, p = 0.5")
        np.testing.assert_allclose(shown(lab.out), out[0].numpy(), rtol=1e-6, atol=1e-6)
        assert f"{float(out.mean()):.5f}" in lab.stats.text() and "about the same" not in lab.stats.text()
        if kind == "Dropout2d":
            gone = int((out.flatten(1) == 0).all(1).sum())
            assert f"{gone} of {y.shape[0]} channels" in lab.stats.text()
        else:
            assert "no 1/(1−p)" in lab.stats.text()


def test_pointwise_lab_sum_is_the_layers_output(qtbot, session):
    lab = make_lab(qtbot, PointwiseLab, session)
    d = show_layer(qtbot, lab, session, "blocks.1.0.conv_pwl")
    module = dict(session.engine.loaded.module.named_modules())["blocks.1.0.conv_pwl"]
    x, y = hooked(session.engine, session.image.rgb, "blocks.1.0.conv_pwl")
    weight = module.weight.detach()[:, :, 0, 0]
    np.testing.assert_array_equal(shown(lab.matrix_cell), weight.numpy())
    np.testing.assert_allclose(shown(lab.model), y[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(shown(lab.total), y[0].numpy(), atol=1e-4)
    for i, channel in enumerate(d.top_channels):
        np.testing.assert_allclose(shown(lab.tiles[i]), (weight[0, channel] * x[channel]).numpy(), atol=1e-5)
        w = float(weight[0, channel])
        sign = ("−" if w < 0 else "") if i == 0 else ("− " if w < 0 else "+ ")
        assert lab.tiles[i].label.text == f"{sign}{abs(w):.3f} × in[{channel}]"  # one sign, never "+ +0.8"
    contributions = (weight[0][:, None, None] * x).abs().mean(dim=(1, 2))
    assert set(d.top_channels) == set(torch.topk(contributions, len(d.top_channels)).indices.tolist())
    assert "56×56×96 → 56×56×24" in lab.shapes.text()
    passes = session.forward_passes
    rerender(qtbot, lab, lambda: lab.channel.setValue(7))
    assert session.forward_passes == passes
    np.testing.assert_allclose(shown(lab.total), y[7].numpy(), atol=1e-4)
    assert lab.matrix_cell.box.rect().top() <= 7 and lab.matrix_cell.box.rect().bottom() >= 8
    rerender(qtbot, lab, lambda: lab.top.setValue(3))
    assert [t.view.isVisible() for t in lab.tiles[:4]] == [True, True, True, False]


def test_a_hidden_lab_waits_until_shown(qtbot, session):
    lab = ReluLab()
    qtbot.addWidget(lab)
    lab.bind(session)
    lab.set_layer("bn1", rows_of(session)["bn1"])
    assert session.subscription(lab.key) is None and not lab.is_ready()
    with qtbot.waitSignal(lab.ready, timeout=STEP_MS):
        lab.show()
    assert lab.data.layer == "bn1"


def test_hiding_a_lab_drops_its_slot_and_showing_it_asks_again(qtbot, session):
    lab = make_lab(qtbot, DropoutLab, session)
    show_layer(qtbot, lab, session, "conv_head")
    lab.hide()
    assert session.subscription(lab.key) is None
    with qtbot.waitSignal(lab.ready, timeout=STEP_MS):
        lab.show()
    assert session.subscription(lab.key).layer == "conv_head"
