"""The app ends when its window goes away (also without a close request, also while the model loads or
torch imports), and keys stay with the control that has the focus. How soon it ends (within a second;
three during the torch import) is measured by ``tests/bench/bench_exit.py``."""
import os
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSlider

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from bench_exit import exit_seconds  # noqa: E402  (the bench runs the app the same way and times it)


@pytest.mark.parametrize("how", ["close", "destroyed"])
def test_process_ends_when_the_window_goes_away_while_a_model_is_loading(how, tmp_path):
    """The window goes away while the model is being built in a worker: the process ends (exit code 0)."""
    exit_seconds(how, "Loading model", str(tmp_path))


def test_process_ends_even_during_the_torch_import(tmp_path):
    """While ``import torch`` loads its shared libraries it holds the GIL (a second or more on a busy
    machine), so the window's own thread cannot run; the app still ends after the import step."""
    exit_seconds("close", "Starting PyTorch", str(tmp_path))


def test_animation_keys_never_take_a_focused_controls_keys(qtbot):
    from convviz.ui.convolution.panel import ConvolutionPanel

    panel = ConvolutionPanel()
    qtbot.addWidget(panel)
    panel.show()
    toy = panel.toy
    slider = toy.sliders["W"].findChildren(QSlider)[0]  # the slider inside the labelled slider
    qtbot.waitExposed(panel)
    start_w, start_frame = toy.value("W"), panel.frame()
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    qtbot.keyClick(slider, Qt.Key.Key_End)
    assert toy.value("W") > start_w  # the slider moved …
    assert panel.frame() == start_frame  # … and the animation did not step
    toy.set_values(mode="max")  # pooling: the ceil_mode check box is in use
    box = toy.ceil_check
    before = box.isChecked()
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert box.isChecked() != before and not panel.transport.is_playing()
    panel.player.setFocus()
    qtbot.keyClick(panel.player, Qt.Key.Key_Right)
    assert panel.frame() == 1  # with the stage focused, → steps the animation
    qtbot.keyClick(panel.player, Qt.Key.Key_Space)
    assert panel.transport.is_playing()
    panel.pause()
