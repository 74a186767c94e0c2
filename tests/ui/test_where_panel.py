"""The Where it looks tab: each step runs its core task when shown, draws its result, redraws on a
slider without recomputing, picks classes, cancels, recomputes for a new photo and exports PNGs."""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF

from convviz.core.images import load_image
from convviz.ui.where.panel import CAM, DENSE, WINDOWS

from ui_helpers import STEP_MS, task_result


@pytest.fixture
def where(qtbot, ready):
    """The window on the cat, the Where tab shown and its first Grad-CAM in."""
    result = task_result(qtbot, ready, CAM, lambda: ready.set_view("where"))
    panel = ready.panels["where"]
    assert panel.results[CAM] is result
    return ready, panel


def test_cam_step_shows_the_top_class_with_its_box_and_caption(qtbot, where):
    window, panel = where
    cam = panel.results[CAM]
    assert cam.index == window.predictions.predictions[0]["index"] == 282 and cam.layer == "bn2"
    assert panel.cam.canvas.overlay.isVisible() and panel.cam.canvas.boxes_shown() == 1
    text = panel.cam.caption.text()
    assert "at bn2" in text and "one unit every 32 input px = 37.5 photo px" in text
    assert "not a trained box regressor" in text and "logit 9.07, 37.8%" in text
    assert panel.cam.classes.count() == 10 and panel.cam.classes.item(0).isSelected()
    assert panel.is_ready() and panel.export_button.isEnabled()


def test_picking_a_class_by_click_typing_and_from_the_predictions_chart(qtbot, where):
    window, panel = where
    item = panel.cam.classes.item(1)
    assert task_result(qtbot, window, CAM, lambda: panel.cam.classes.itemClicked.emit(item)).index == 285
    assert panel.cam.classes.item(1).isSelected()

    def type_in(text):
        panel.cam.entry.setText(text)
        panel.cam.entry.returnPressed.emit()

    assert task_result(qtbot, window, CAM, lambda: type_in("espresso")).label == "espresso"
    with qtbot.waitSignal(window.session.task_failed, timeout=STEP_MS, check_params_cb=lambda k, _m: k == CAM) as failed:
        type_in("1000")
    assert failed.args[1] == "class 1000 is out of range: this model has 1000 classes (0–999)"
    assert panel.cam.caption.text() == failed.args[1] and panel.results[CAM] is None

    chart = window.predictions
    point = chart.getPlotItem().getViewBox().mapViewToScene(QPointF(10.0, 2.0))  # row 2: tabby

    class Click:
        def scenePos(self):  # noqa: N802 (pyqtgraph's event API)
            return point

    assert task_result(qtbot, window, CAM, lambda: chart.scene().sigMouseClicked.emit(Click())).index == 281


def test_layer_choice_and_sliders(qtbot, where):
    window, panel = where
    combo = panel.cam.layer
    assert combo.itemData(0) is None and combo.itemText(0).startswith("bn2 (default")
    index = combo.findData("blocks.4.2.conv_pwl")
    assert index > 0 and "stride 16" in combo.itemText(index)
    result = task_result(qtbot, window, CAM, lambda: combo.setCurrentIndex(index))
    assert result.layer == "blocks.4.2.conv_pwl" and result.grid.jump == (16, 16) and result.cam.shape == (14, 14)
    assert "one unit every 16 input px" in panel.cam.caption.text()
    runs = []
    window.session.task_progress.connect(lambda key, _p: runs.append(key))
    alpha = panel.cam.canvas.overlay.image[..., 3].max()
    panel.cam.opacity.setValue(20)
    assert panel.cam.canvas.overlay.image[..., 3].max() < alpha
    boxes = {}
    for value in (20, 80):
        panel.cam.threshold.setValue(value)
        rect = panel.cam.canvas.rects[0].rect()
        boxes[value] = rect.width() * rect.height()
        assert f"above {value}% of the peak" in panel.cam.caption.text()
    assert boxes[20] > boxes[80] > 0
    assert runs == []  # redrawn from the result in hand


def test_detection_both_ways_side_by_side_with_the_measured_ratio(qtbot, where):
    window, panel = where
    with qtbot.waitSignals([window.session.task_ready] * 2, timeout=STEP_MS * 3,
                           check_params_cbs=[lambda k, _r: k == WINDOWS, lambda k, _r: k == DENSE],
                           order="none"):
        panel.show_step("detect")
    qtbot.waitUntil(panel.is_ready, timeout=STEP_MS)
    windows, dense = panel.results[WINDOWS], panel.results[DENSE]
    assert all(canvas.boxes_shown() > 0 for canvas in panel.detect.canvases)
    ratio = re.search(r"took ([\d.]+) s, the dense pass ([\d.]+) s: ([\d.]+)× as long", panel.detect.ratio.text())
    assert ratio and float(ratio.group(1)) == pytest.approx(windows.seconds, abs=0.006)
    assert float(ratio.group(3)) == pytest.approx(windows.seconds / dense.seconds, rel=0.05, abs=0.06)
    assert f"{len(windows.windows)} crops" in panel.detect.times[0].text()
    assert f"{dense.shape[0]}×{dense.shape[1]} window positions" in panel.detect.times[1].text()
    assert "a window of 851 px (its receptive field) every 32 px (its total stride)" in panel.detect.caption.text()
    shown = panel.detect.canvases[1].boxes_shown()
    panel.detect.threshold.setValue(90)
    assert panel.detect.canvases[1].boxes_shown() < shown
    size = task_result(qtbot, window, DENSE, lambda: panel.detect.input_size.setValue(224))
    assert size.frame.input_hw == (183, 275)


def test_cancel_then_run_again(qtbot, where):
    window, panel = where
    with qtbot.waitSignal(window.session.task_cancelled, timeout=STEP_MS, check_params_cb=lambda k: k == WINDOWS):
        panel.show_step("detect")
        assert panel.run_button.text() == "Cancel" and panel.progress.isVisible()
        panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=STEP_MS)
    assert panel.run_button.text() == "Run again" and "Stopped" in panel.status.text()
    assert task_result(qtbot, window, WINDOWS, panel.run_button.click, STEP_MS * 3) is panel.results[WINDOWS]


def test_segmentation_picks_and_background(qtbot, where):
    window, panel = where
    dense = task_result(qtbot, window, DENSE, lambda: panel.show_step("segment"))
    page = panel.segment
    assert page.classes.count() == 10 and len(page.picked()) == 4
    page.set_picked((285,))
    seg = page.segmentation
    assert seg.classes == (285,) and f"Egyptian&nbsp;cat&nbsp;{seg.fractions[0]:.0%}" in page.legend.text()
    wide = seg.fractions[0]
    page.background.setValue(90)
    assert page.segmentation.fractions[0] < wide and page.segmentation.background == 0.9
    assert "one score every 32 input px" in page.note.text() and "stride-16 and stride-8" in page.note.text()
    assert page.result is dense and panel.is_ready()


def test_a_new_photo_recomputes_the_step_on_screen(qtbot, where, sample_path):
    window, panel = where
    result = task_result(qtbot, window, CAM, lambda: window.session.set_image(load_image(sample_path("coffee"))))
    assert result.index == 967 and result.frame.photo_hw == (400, 600)
    assert panel.detect.dense is None and DENSE in panel.dirty  # the hidden steps wait until shown


@pytest.mark.parametrize("step", ["cam", "detect", "segment"])
def test_export_png_with_legend(qtbot, where, tmp_path, step):
    window, panel = where
    if step != "cam":
        keys = [WINDOWS, DENSE] if step == "detect" else [DENSE]
        with qtbot.waitSignals([window.session.task_ready] * len(keys), timeout=STEP_MS * 3, order="none",
                               check_params_cbs=[lambda k, _r, key=key: k == key for key in keys]):
            panel.show_step(step)
    qtbot.waitUntil(lambda: panel.export_button.isEnabled(), timeout=STEP_MS)
    path = tmp_path / f"{step}.png"
    assert panel.export_png(str(path))
    with Image.open(path) as png:
        width, height = png.size
        pixels = np.asarray(png.convert("RGB"))
    assert width == (451 if step != "detect" else 451 * 2 + 12) and height > 300 + 40
    assert (pixels[-30:] == 255).mean() > 0.5  # the legend strip below the photo is white with text
    assert f"Saved {path}" == panel.status.text()


def test_nothing_runs_while_the_tab_is_hidden(qtbot, ready, sample_path):
    panel = ready.panels["where"]
    started = []
    ready.session.task_progress.connect(lambda key, _p: started.append(key))
    with qtbot.waitSignal(ready.session.image_loaded, timeout=STEP_MS):
        ready.session.set_image(load_image(sample_path("coffee")))
    panel.pick_class(967)  # from the predictions chart, while another tab is shown
    assert not panel.isVisible() and started == [] and CAM in panel.dirty
    result = task_result(qtbot, ready, CAM, lambda: ready.set_view("where"))
    assert result.index == 967 and panel.cam.target == 967


def test_step_names_are_the_app_option(where):
    _, panel = where
    for name in ("detect", "segment", "cam"):
        panel.show_step(name)
        assert panel.step() == name and panel.pages.currentIndex() == panel.steps.currentIndex()


@pytest.mark.parametrize("size", [(1280, 800), (1024, 700)], ids=["1280x800", "1024x700"])
def test_no_text_over_the_pictures_and_no_cut_labels(qtbot, where, size):
    from layout_check import checked_count, cut_off, settle, short_labels, text_over_plots

    window, panel = where
    window.resize(*size)
    for step in ("cam", "detect", "segment"):
        panel.show_step(step)
        qtbot.waitUntil(lambda: panel.is_ready() and not panel.running, timeout=STEP_MS * 3)
        settle()
        texts, plots = checked_count(window)
        assert texts > 20 and plots >= 2, (texts, plots)
        problems = text_over_plots(window) + short_labels(window) + cut_off(window)
        assert not problems, "\n".join([f"{step} at {size}:"] + problems)
