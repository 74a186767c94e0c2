"""The Convolution panel, driven like a user: sliders, buttons, keys, hover, export."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import Qt

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from convviz.ui.convolution.arithmetic import num  # noqa: E402
from convviz.ui.convolution.panel import ConvolutionPanel  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def panel(qtbot):
    widget = ConvolutionPanel()
    qtbot.addWidget(widget)
    widget.resize(1400, 900)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.pause()


def drag(panel, **values):
    """Move the toy sliders one by one, as a user would."""
    for key, value in values.items():
        panel.toy.sliders[key].setValue(value)


def test_textbook_default_7x7_3x3_stride1(panel):
    toy = panel.toy
    assert (toy.value("W"), toy.value("K"), toy.value("S"), toy.value("P"), toy.value("D")) == (7, 3, 1, 0, 1)
    assert "= <b>5</b>" in toy.formula_label.text()
    assert "5×5" in toy.output_caption.text()
    assert panel.frame_count() == 25 and panel.transport.count == 25


def test_fraction_case_is_explained_with_uncovered_cells(panel):
    drag(panel, W=7, K=3, S=3, P=0)
    toy = panel.toy
    qtbot_text = toy.note_label.text()
    assert toy.note_label.isVisible() and toy.note_level == "warn"
    assert "(7 − 3 + 2·0)/3 + 1 = 2.33 is not a whole number" in qtbot_text
    assert "row and column 6" in qtbot_text and "floors" in qtbot_text and "ceil_mode" in qtbot_text
    assert toy.geometry.uncovered == (6,)
    assert "2×2" in toy.output_caption.text()
    drag(panel, S=1)
    assert toy.note_level == "ok" and "not a whole number" not in toy.note_label.text()


def choose_mode(panel, mode):
    """Pick the layer type in the combo box, as a user would."""
    combo = panel.toy.mode_combo
    combo.setCurrentIndex(combo.findData(mode))


def test_pooling_ceil_mode_keeps_partial_window(panel):
    drag(panel, W=7, K=3, S=3, P=0)
    assert not panel.toy.ceil_check.isEnabled()  # Conv2d has no ceil_mode
    choose_mode(panel, "max")
    assert panel.toy.geometry.output == 2  # MaxPool2d's default: floor
    panel.toy.ceil_check.setChecked(True)
    assert panel.toy.geometry.output == 3 and panel.toy.geometry.partial
    assert "partial window" in panel.toy.note_label.text()
    assert panel.frame_count() == 9


def test_stride_2_shrinks_output(panel):
    drag(panel, S=2)
    assert panel.toy.geometry.output == 3
    panel.set_frame(1)
    assert panel.toy.geometry.starts[1] == 2


def test_same_padding_button(panel, qtbot):
    drag(panel, W=32, K=5)
    qtbot.mouseClick(panel.toy.same_button, Qt.LeftButton)
    assert panel.toy.value("P") == 2 and panel.toy.geometry.output == 32
    assert "output 32×32 = input" in panel.toy.same_label.text().lower()
    drag(panel, K=4)
    qtbot.mouseClick(panel.toy.same_button, Qt.LeftButton)
    assert "even" in panel.toy.same_label.text() and panel.toy.value("P") == 2


def test_32x32x3_input_5x5_filters_padding_2(panel):
    panel.toy.channels.setValue(3)
    panel.toy.filters.setValue(8)
    drag(panel, W=32, K=5, P=2)
    text = panel.toy.formula_label.text()
    assert "32×32×3 input" in text and "<b>32×32×8</b>" in text


def test_bad_settings_are_explained_not_raised(panel):
    drag(panel, W=3, K=9, P=0)
    assert panel.toy.note_level == "error" and "refuses" in panel.toy.note_label.text()
    assert panel.frame_count() == 0 and not panel.transport.isEnabled()
    drag(panel, W=9, K=3, P=3)
    choose_mode(panel, "max")
    panel.toy.ceil_check.setChecked(True)
    note = panel.toy.note_label.text()
    assert panel.toy.note_level == "error" and "half the kernel" in note
    assert "P at most K/2 = 1" in note and "W or P larger" not in note  # P must get smaller
    panel.toy.ceil_check.setChecked(False)
    choose_mode(panel, "conv")
    import torch
    from torch import nn

    for w, k, s, p, d in [(1, 11, 8, 10, 5), (64, 1, 8, 0, 1), (2, 2, 3, 1, 5), (64, 11, 1, 10, 5)]:
        drag(panel, W=w, K=k, S=s, P=p, D=d)
        panel.toy.hover_output(0, 0)
        panel.toy.hover_input(0, 0)
        panel.step(1)
        try:  # torch's own layer decides the output size, or refuses
            side = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, w, w)).shape[-1]
        except RuntimeError:
            side = 0
        assert panel.frame_count() == side * side, (w, k, s, p, d)
        assert (panel.toy.note_level == "error") == (side == 0), (w, k, s, p, d)
        assert panel.frame() == min(1, max(side * side - 1, 0))


def test_step_buttons_and_keys_change_frame(panel, qtbot):
    assert panel.frame() == 0
    panel.step(1)
    assert panel.frame() == 1 and "(0, 1)" in panel.toy.readout_label.text()
    panel.step(-1)
    assert panel.frame() == 0
    qtbot.mouseClick(panel.transport.forward_button, Qt.LeftButton)
    assert panel.frame() == 1
    panel.toy.input_canvas.setFocus()
    qtbot.keyClick(panel.toy.input_canvas, Qt.Key_End)
    assert panel.frame() == 24
    qtbot.keyClick(panel.toy.input_canvas, Qt.Key_Left)
    assert panel.frame() == 23
    qtbot.keyClick(panel.toy.input_canvas, Qt.Key_Home)
    assert panel.frame() == 0
    panel.transport.scrubber.setValue(12)
    assert panel.frame() == 12


def test_play_advances_then_pauses(panel, qtbot):
    panel.transport.set_speed(60)
    panel.play()
    assert panel.transport.is_playing()
    qtbot.waitUntil(lambda: panel.frame() >= 3, timeout=3000)
    panel.pause()
    assert not panel.transport.is_playing()


def test_hover_links_output_and_input(panel, qtbot):
    canvas = panel.toy.output_canvas
    with qtbot.waitSignal(panel.toy_cell_hovered) as blocker:
        qtbot.mouseMove(canvas, canvas.cell_center(1, 2).toPoint())
    assert blocker.args[0] == ("output", 1, 2)
    assert "Hovered output (1, 2)" in panel.toy.readout_label.text()
    drag(panel, S=3)
    with qtbot.waitSignal(panel.toy_cell_hovered) as blocker:
        panel.toy.hover_input(6, 2)
    assert blocker.args[0] == ("input", 6, 2)
    assert "never read" in panel.toy.readout_label.text()
    panel.toy.hover_input(4, 4)
    assert "read by 1 output cell: (1, 1)" in panel.toy.readout_label.text()


def _conv_data(**kwargs):
    import torch
    from torch import nn

    from convviz.core.geometry.conv_probe import conv_layer_data

    torch.manual_seed(0)
    module = nn.Conv2d(**kwargs).eval()
    x = torch.randn(1, module.in_channels, 12, 10)
    with torch.no_grad():
        out = module(x)
    return conv_layer_data(module, "features.3", x, out), out


def test_real_mode_hover_shows_the_models_value(panel, qtbot):
    data, out = _conv_data(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1, dilation=2)
    with qtbot.waitSignal(panel.conv_layer_requested) as requested:
        panel.set_conv_layers(["features.0", "features.3"])
        panel.real.layer_combo.setCurrentIndex(1)
        panel.show_real()
    assert requested.args == ["features.3"]
    panel.set_conv_data(data)
    assert panel.frame_count() == out.shape[-2] * out.shape[-1]
    panel.real.out_spin.setValue(2)
    canvas = panel.real.output_canvas
    with qtbot.waitSignal(panel.receptive_field_hovered) as hovered:
        qtbot.mouseMove(canvas, canvas.cell_center(3, 1).toPoint())
    assert hovered.args[0] == ("features.3", 3, 1)
    want = out[0, 2, 3, 1].item()
    assert abs(panel.real.last_probe.total - want) < 1e-4
    assert f"(model: <b>{want:.5f}</b>" in panel.real.readout_label.text()
    assert "Σ inputs × weights + bias" in panel.real.readout_label.text()
    with qtbot.waitSignal(panel.receptive_field_hovered) as left:
        panel.real.clear_hover()
    assert left.args[0] is None


def test_real_mode_depthwise_shows_which_channel_feeds(panel):
    data, _ = _conv_data(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6)
    panel.show_real()
    panel.set_conv_data(data)
    panel.real.out_spin.setValue(4)
    assert "Depthwise" in panel.real.groups_label.text()
    assert panel.real.in_spin.value() == 4 and not panel.real.in_spin.isEnabled()
    grouped, _ = _conv_data(in_channels=6, out_channels=9, kernel_size=3, groups=3)
    panel.set_conv_data(grouped)
    panel.real.out_spin.setValue(5)
    assert "reads input channels 2–3" in panel.real.groups_label.text()
    assert (panel.real.in_spin.minimum(), panel.real.in_spin.maximum()) == (2, 3)


def test_export_png_and_gif(panel, tmp_path):
    from PIL import Image

    drag(panel, W=5, K=3, S=1)
    png = tmp_path / "frame.png"
    assert panel.export_frame_png(str(png)) and png.stat().st_size > 0
    assert Image.open(png).size[0] > 200
    gif = tmp_path / "anim.gif"
    frame_before = panel.frame()
    assert panel.export_gif(str(gif), fps=5) == 9
    with Image.open(gif) as image:
        assert image.n_frames == 9
    assert panel.frame() == frame_before


def test_gif_export_from_the_event_loop_reports_progress_and_can_be_cancelled(panel, qtbot, tmp_path):
    from PIL import Image

    drag(panel, W=12, K=3, S=1)  # 100 frames: many event-loop turns
    gif = tmp_path / "live.gif"
    steps = []
    export = panel.start_gif_export(str(gif), fps=10)
    export.progress.connect(lambda done, total: steps.append((done, total)))
    assert panel.save_gif_button.text() == "Cancel GIF"
    with qtbot.waitSignal(export.finished, timeout=60_000) as done:
        pass
    assert done.args == [100] and steps and steps[-1][1] == 100
    with Image.open(gif) as image:
        assert image.n_frames == 100
    assert panel.save_gif_button.text() == "Save GIF…" and "Saved 100 frames" in panel.status_label.text()

    cancelled = tmp_path / "cancelled.gif"
    export = panel.start_gif_export(str(cancelled))
    with qtbot.waitSignal(export.progress, timeout=10_000):
        pass
    with qtbot.waitSignal(export.finished, timeout=10_000) as done:
        panel.save_gif_button.click()  # the button cancels while an export runs
    assert done.args == [0] and not cancelled.exists()
    assert "cancelled" in panel.status_label.text()

    unwritable = tmp_path / "no-such-folder" / "x.gif"
    export = panel.start_gif_export(str(unwritable))
    with qtbot.waitSignal(export.finished, timeout=60_000) as done:
        pass
    assert done.args == [0] and "Could not write" in panel.status_label.text()


def test_panel_module_does_not_import_torch():
    code = "import sys, convviz.ui.convolution.panel; print('torch' in sys.modules)"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _darkest(canvas, row, col):
    """Darkest pixel near the centre of a cell, as the canvas paints it (grab)."""
    image = canvas.grab().toImage()
    centre = canvas.cell_center(row, col)
    return min(image.pixelColor(int(centre.x()) + dx, int(centre.y()) + dy).lightness()
               for dx in range(-6, 7) for dy in range(-6, 7))


def test_output_numbers_appear_only_once_computed(panel):
    drag(panel, W=7, K=3, S=2, P=1)
    panel.set_frame(5)
    canvas = panel.toy.output_canvas
    assert _darkest(canvas, 0, 0) < 100  # computed: its number is drawn
    assert _darkest(canvas, 3, 3) > 200  # not yet computed: blank
    panel.set_frame(panel.frame_count() - 1)
    assert _darkest(canvas, 3, 3) < 100


def _stem_data():
    """A conv_stem-like layer (3 → 8 channels, 3×3, stride 2, padding 1) on a 224×224 input."""
    import torch
    from torch import nn

    from convviz.core.geometry.conv_probe import conv_layer_data

    torch.manual_seed(0)
    module = nn.Conv2d(3, 8, 3, stride=2, padding=1).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = module(x)
    return conv_layer_data(module, "conv_stem", x, out)


def _transport_shown(panel, area) -> bool:
    """The transport and both save buttons lie inside the scroll area's viewport."""
    from PySide6.QtCore import QPoint

    viewport = area.viewport().rect()
    for widget in (panel.transport, panel.save_frame_button, panel.save_gif_button):
        corner = widget.mapTo(area.viewport(), QPoint(widget.width() - 1, widget.height() - 1))
        if not (widget.isVisible() and viewport.contains(corner)):
            return False
    return True


def test_panel_fits_the_main_window_without_scrolling(qtbot):
    """In the 1400×880 main window the panel gets about 930×725 inside a scroll area: nothing
    scrolls, the transport bar is in view, and the grids and maps use the room."""
    from PySide6.QtWidgets import QApplication

    from convviz.ui.widgets.sections import scrollable

    panel = ConvolutionPanel()
    hint = panel.minimumSizeHint()
    assert hint.height() <= 640 and hint.width() <= 820
    area = scrollable(panel)  # as the main window shows it
    qtbot.addWidget(area)
    area.resize(930, 725)
    area.show()
    qtbot.waitExposed(area)
    try:
        drag(panel, W=7, K=3, S=3, P=0)  # the fractional case: the longest explanation
        QApplication.processEvents()
        assert not area.verticalScrollBar().isVisible() and not area.horizontalScrollBar().isVisible()
        assert _transport_shown(panel, area)
        toy = panel.toy
        for canvas in (toy.input_canvas, toy.kernel_canvas, toy.output_canvas):
            assert canvas.cell_center(0, 1).x() - canvas.cell_center(0, 0).x() >= 30  # one shared, large cell
        assert toy.legend_label.geometry().top() - toy.input_canvas.geometry().bottom() < 30  # no empty band
        assert toy.input_caption.heightForWidth(toy.input_caption.width()) <= toy.input_caption.height()

        panel.show_real()
        panel.set_conv_data(_stem_data())
        panel.real.hover_output(30, 40)
        QApplication.processEvents()
        assert not area.verticalScrollBar().isVisible() and not area.horizontalScrollBar().isVisible()
        assert _transport_shown(panel, area)
        real = panel.real
        for canvas, n in ((real.input_canvas, 226), (real.output_canvas, 112)):
            assert canvas.cell_center(n - 1, n - 1).x() - canvas.cell_center(0, 0).x() >= 250  # large maps
        for small in (real.window_canvas, real.kernel_canvas):
            assert small.width() < real.input_canvas.width() / 2
        readout = real.readout_label
        assert "Σ inputs × weights + bias" in readout.text() and "(model: <b>" in readout.text()
        assert readout.heightForWidth(readout.width()) <= readout.height()  # the readout is not cut off
    finally:
        panel.pause()


def test_pooling_is_per_channel_in_every_mode(panel):
    import torch
    import torch.nn.functional as F

    toy = panel.toy
    toy.set_values(W=6, K=2, S=2, P=0, C=3, mode="max")
    x = torch.from_numpy(toy.values.copy())[None]
    for mode, ref in (("max", F.max_pool2d(x, 2, 2)), ("avg", F.avg_pool2d(x, 2, 2)), ("l2", F.lp_pool2d(x, 2, 2))):
        choose_mode(panel, mode)
        assert toy.output.shape == (3, 3, 3)
        np.testing.assert_allclose(toy.output, ref[0].numpy(), rtol=1e-6)
        toy.channel_spin.setValue(2)
        np.testing.assert_allclose(toy.shown_output, ref[0, 2].numpy(), rtol=1e-6)
        panel.set_frame(4)
        text = toy.readout_label.text()
        assert "channel 2 =" in text and f"<b>{num(ref[0, 2, 1, 1].item())}</b>" in text
        assert "each of the" not in text and "channel 2" in toy.output_caption.text()
        assert "Output</b> 3×3×3" in toy.output_caption.text()
    assert "√(" in toy.readout_label.text()
    assert not toy.filters.isEnabled() and "no parameters" in toy.formula_label.text()


def test_conv_arithmetic_per_channel_then_bias(panel):
    import torch
    import torch.nn.functional as F

    toy = panel.toy
    toy.set_values(W=8, K=5, S=1, P=2, C=3, F=2, filter=1, channel=2)
    x = torch.from_numpy(toy.values.copy())[None]
    ref = F.conv2d(x, torch.from_numpy(toy.weights.copy()), torch.from_numpy(toy.bias.copy()), 1, 2)[0]
    np.testing.assert_allclose(toy.output, ref.numpy())
    panel.set_frame(9)  # output (1, 1)
    text = toy.readout_label.text()
    assert "of filter 1" in text and "channel 2:" in text and "per channel: c0:" in text
    assert f"+ bias {toy.bias[1]:g}".replace("-", "−") in text.replace("(", "").replace(")", "")
    assert f"<b>{num(ref[1, 1, 1].item())}</b>" in text
    assert "Σ of 75 products" not in text and "·" in text  # the shown channel's 25 products are written out
    caption = toy.kernel_caption.text()
    assert "Filter 1" in caption and "channel&nbsp;2&nbsp;slice" in caption
    assert "2·(5·5·3 + 1) = 152 parameters" in toy.formula_label.text()


def test_ceil_mode_that_drops_its_last_window_says_so(panel):
    toy = panel.toy
    toy.set_values(W=5, K=2, S=2, P=1, mode="max", ceil=True)
    assert toy.geometry.output == 3  # torch: MaxPool2d(2, 2, 1, ceil_mode=True) on 5 → 3
    caption = toy.output_caption.text()
    assert "⌈7/2⌉ = 4" in caption and "dropped → 3" in caption
    note = toy.note_label.text()
    assert "would round up to 4" in note and "partial window" not in note and "0×0" not in note


def test_same_padding_with_stride_two(panel, qtbot):
    drag(panel, W=7, K=3, S=2)
    qtbot.mouseClick(panel.toy.same_button, Qt.LeftButton)
    assert panel.toy.value("P") == 4 and panel.toy.geometry.output == 7
    assert "whatever" not in panel.toy.same_label.text()


def test_real_layer_list_has_kernel_and_type_hints(panel, qtbot):
    from convviz.core.capture.layer_table import LayerRow

    rows = [LayerRow("features.0", "Conv2d", (32, 112, 112), kernel=(3, 3), stride=(2, 2), groups=1),
            LayerRow("features.1", "Conv2d", (32, 112, 112), kernel=(3, 3), stride=(1, 1), groups=32),
            LayerRow("features.2", "Conv2d", (16, 112, 112), kernel=(1, 1), stride=(1, 1), groups=1)]
    panel.set_conv_layers([r.name for r in rows], rows)
    combo = panel.real.layer_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert "3×3, stride 2 → 32 ch" in texts[0] and "3×3 depthwise → 32 ch" in texts[1]
    assert "1×1 pointwise → 16 ch" in texts[2] and texts[2].startswith("features.2")
    with qtbot.waitSignal(panel.conv_layer_requested) as requested:
        combo.setCurrentIndex(1)
        panel.show_real()
    assert requested.args == ["features.1"]  # the module path, not the label


def test_real_layer_shows_whole_output_value_range_and_legible_5x5_window(panel):
    data, out = _conv_data(in_channels=2, out_channels=3, kernel_size=5, padding=2)
    panel.show_real()
    panel.set_conv_data(data)
    real = panel.real
    assert panel.frame() == 0
    image = real.output_canvas.grab().toImage()
    last = real.output_canvas.cell_center(out.shape[-2] - 1, out.shape[-1] - 1)
    assert image.pixelColor(int(last.x()), int(last.y())).getRgb()[:3] != (190, 190, 190)  # shown before its frame
    lo, hi = float(data.input[0].min()), float(data.input[0].max())
    assert f"values {lo:.2f} … {hi:.2f}".replace("-", "−") in real.input_caption.text()
    window = real.window_canvas
    assert window.grid_shape == (5, 5)
    assert window.cell_center(0, 1).x() - window.cell_center(0, 0).x() >= 30  # room for "−0.12"
    image, centre = window.grab().toImage(), window.cell_center(2, 2)
    light = [image.pixelColor(int(centre.x()) + dx, int(centre.y()) + dy).lightness()
             for dx in range(-12, 13) for dy in range(-5, 6)]
    assert max(light) - min(light) > 80  # a number is drawn on the cell, not a flat colour
    panel.set_frame(7)
    assert "input channel 0:" in real.readout_label.text() and "Σ of 25" not in real.readout_label.text()


def test_same_padding_note_does_not_outlive_its_settings(panel):
    drag(panel, W=7, K=3, S=1, P=0, D=1)
    panel.toy.same_button.click()
    assert panel.toy.value("P") == 1 and "Output 7×7 = input" in panel.toy.same_label.text()
    drag(panel, W=5)
    assert panel.toy.same_label.text() == ""
