"""The Layers panel's Top patches and Effective field tabs on the session's task seam: a folder's top 9
for the mosaic's channel (one pass serves every channel), a click opens the photo at that unit, Cancel
stops the pass, a bad folder is one line; the clicked unit's effective field against its box; the demo."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from convviz.core.capture.unit_field import unit_field
from convviz.ui.layers import erf_view, top_patches_view

from ui_helpers import STEP_MS, task_result

LAYER = "blocks.1"


def photos(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        arr = rng.integers(0, 256, (60, 72, 3)).astype(np.uint8)
        Image.fromarray(arr).save(os.path.join(folder, f"{i:02d}.png"))
    return str(folder)


@pytest.fixture
def layers(qtbot, ready):
    """The window on the cat with the Layers tab on ``blocks.1`` and its mosaic in."""
    ready.set_view("layers")
    panel = ready.layers_panel
    with qtbot.waitSignal(ready.session.view_ready, timeout=STEP_MS,
                          check_params_cb=lambda k, d: k == "layers.mosaic" and d.layer == LAYER):
        panel.select_layer(LAYER)
    return ready, panel


def test_top_patches_follow_the_channel_and_open_the_photo_at_the_unit(qtbot, layers, tmp_path):
    window, panel = layers
    view = panel.look.top_patches
    assert panel.labs.select("top_patches")
    folder = photos(tmp_path / "photos", 6)
    result = task_result(qtbot, window, top_patches_view.KEY, lambda: view.set_folder(folder))
    assert result.top.layer == LAYER and result.channel == 0 and len(result.patches) == 6
    shown = [b for b in view.buttons if b.isVisible()]
    assert len(shown) == 6 and shown[0].text().startswith(f"#1  {result.patches[0].value:.3g}")
    assert "6 photos searched" in view.status.text() and view.progress.isHidden()
    # another channel: the same pass (memo), that channel's patches
    again = task_result(qtbot, window, top_patches_view.KEY, lambda: panel.mosaic.select_channel(3))
    assert again.channel == 3 and again.top.cached
    np.testing.assert_allclose([p.value for p in again.patches], again.top.values[3, :6])
    assert "channel 3 of blocks.1" in view.title.text()
    # a click opens that photo in every panel, keeps layer and channel, draws the unit's field; the effective
    # field tab (hidden now: it computes when shown) takes that unit
    best = again.patches[0]
    with qtbot.waitSignal(window.session.view_ready, timeout=STEP_MS,
                          check_params_cb=lambda k, d: k == "layers.mosaic" and window.session.image.source == best.path):
        view.buttons[0].click()
    qtbot.waitUntil(lambda: f"{LAYER}, unit ({best.unit[0]}, {best.unit[1]})" in window.side.photo_caption.text(),
                    timeout=STEP_MS)
    assert panel.current == LAYER and panel.mosaic.spin.value() == 3
    assert (panel.look.erf.row_spin.value(), panel.look.erf.col_spin.value()) == best.unit
    shown = task_result(qtbot, window, erf_view.KEY, lambda: panel.labs.select("erf"))
    assert shown.unit.unit == best.unit


def test_cancel_stops_the_pass_and_a_bad_folder_is_one_line(qtbot, layers, tmp_path):
    window, panel = layers
    view = panel.look.top_patches
    assert panel.labs.select("top_patches")
    folder = photos(tmp_path / "many", 48)
    with qtbot.waitSignal(window.session.task_cancelled, timeout=STEP_MS, check_params_cb=lambda k: k == top_patches_view.KEY):
        view.set_folder(folder)
        assert view.cancel.isEnabled() and view.progress.isVisible()
        view.cancel.click()
    assert view.status.text().startswith("Cancelled") and not view.cancel.isEnabled() and view.is_ready()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("no photo here")
    with qtbot.waitSignal(window.session.task_failed, timeout=STEP_MS,
                          check_params_cb=lambda k, _m: k == top_patches_view.KEY) as blocker:
        view.set_folder(str(tmp_path / "text"))
    assert blocker.args[1] == view.status.text() == ("text: none of its 1 files is an image convviz can read "
                                                     "(notes.txt: not an image)")
    assert not any(b.isVisible() for b in view.buttons)


def test_effective_field_of_the_clicked_unit_against_its_box(qtbot, layers):
    window, panel = layers
    view = panel.look.erf
    result = task_result(qtbot, window, erf_view.KEY, lambda: panel.labs.select("erf"))
    row = window.session.model_info.row(LAYER)
    assert result.unit.unit == (row.out_shape[1] // 2, row.out_shape[2] // 2)  # the centre first
    # a unit clicked in the mosaic (the one under the mouse) is differentiated next
    panel.mosaic.unit_hovered.emit((LAYER, 5, 9))
    result = task_result(qtbot, window, erf_view.KEY, lambda: panel.look._on_click(None))
    one = result.unit
    assert one.unit == (5, 9) and one.channel is None
    field = unit_field(row, 5, 9, (224, 224))
    assert one.box == field.box
    (top, bottom), (left, right) = field.box
    rect = view.boxes[0].rect()
    assert (rect.left(), rect.top(), rect.width(), rect.height()) == (max(left, 0), max(top, 0),
                                                                      min(right, 223) - max(left, 0) + 1,
                                                                      min(bottom, 223) - max(top, 0) + 1)
    assert view.sentence.text().startswith("90 % of |∂unit/∂input| lies in")
    # one channel only, and the layer average
    panel.mosaic.select_channel(4)
    result = task_result(qtbot, window, erf_view.KEY, lambda: view.only_channel.setChecked(True))
    assert result.unit.channel == 4 and view.only_channel.text() == "only channel 4"
    result = task_result(qtbot, window, erf_view.KEY, lambda: view.average.click())
    assert len(result.layer.units) == 16 and "Layer average over 16 units" in view.sentence.text()
    # Luo et al.'s uniform stack: measured points on the √(2n/3) curve
    view.demo_button.setChecked(True)
    assert view.demo.isVisible() and len(view.demo.listDataItems()) == 3
    assert "exactly √(2n/3)" in view.demo_note.text()


@pytest.mark.parametrize("size", [(1280, 800), (1024, 700)], ids=["1280x800", "1024x700"])
def test_both_tabs_with_results_fit(qtbot, layers, tmp_path, size):
    from layout_check import cut_off, settle, short_labels, text_over_plots
    from test_layout import overlaps, sideways_scrolling

    window, panel = layers
    window.resize(*size)
    assert panel.labs.select("top_patches")
    task_result(qtbot, window, top_patches_view.KEY, lambda: panel.look.top_patches.set_folder(photos(tmp_path / "p", 9)))
    settle()
    problems = (sideways_scrolling(window), overlaps(window), short_labels(window), cut_off(window))
    assert not any(problems), problems
    task_result(qtbot, window, erf_view.KEY, lambda: panel.labs.select("erf"))
    panel.look.erf.demo_button.setChecked(True)
    settle()
    problems = (sideways_scrolling(window), overlaps(window), short_labels(window), cut_off(window),
                text_over_plots(window))
    assert not any(problems), problems
