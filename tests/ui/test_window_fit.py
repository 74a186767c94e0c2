"""The window on a laptop screen: it opens inside the screen, remembers a size that still fits, and the
smaller points of the same report (predictions' percentages, Train before a folder, tiny photos)."""
import json
import os
import subprocess
import sys

import numpy as np
from PySide6.QtCore import QRect

from convviz.core.images import image_from_array
from convviz.ui.main_window import DEFAULT_SIZE
from convviz.ui.window_geometry import available_area

from layout_check import settle, short_labels, text_over_plots
from ui_helpers import STEP_MS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAPTOP = QRect(0, 0, 1280, 720)


def inside(window, area: QRect) -> bool:
    return area.contains(window.frameGeometry())


def test_the_app_opens_inside_a_1280x720_screen(tmp_path):
    """``main.py`` on a 1280×720 screen (Qt's offscreen platform, configured), with its own settings."""
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1280, "height": 720,
                                               "logicalDpi": 96, "dpr": 1}]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", CONVVIZ_SETTINGS_ORG="convviz-tests",
               XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--exit-after-paint"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("window "))
    size, x, y = line.split()[1].split("+")
    width, height = (int(v) for v in size.split("x"))
    assert QRect(0, 0, 1280, 720).contains(QRect(int(x), int(y), width, height)), line
    assert width >= 1200 and height >= 640, line  # as large as the screen allows, not a small default


def test_a_default_window_is_fitted_and_a_remembered_size_kept_where_it_fits(make_window, settings):
    window = make_window()
    assert (window.width(), window.height()) == DEFAULT_SIZE  # 1400×880: larger than the laptop
    window.place_on_screen(LAPTOP)
    assert inside(window, LAPTOP) and window.width() >= 1200
    window.resize(700, 500)
    window.close()  # remembers 700×500

    again = make_window()
    assert (again.width(), again.height()) == (700, 500)  # fits the (800×800 offscreen) screen: kept
    again.place_on_screen(LAPTOP)
    assert (again.width(), again.height()) == (700, 500) and inside(again, LAPTOP)
    again.resize(1400, 1000)
    again.close()  # remembers a size this screen cannot hold

    third = make_window()
    assert (third.width(), third.height()) != (1400, 1000)  # not restored as saved
    third.place_on_screen()
    assert inside(third, available_area(third))


def test_percentages_stay_inside_the_predictions_chart(qtbot, ready):
    ready.predictions.set_predictions([{"label": f"class {i}", "index": i, "prob": p}
                                       for i, p in enumerate((0.671, 0.2, 0.1, 0.02, 0.009))])
    for size in ((1024, 700), (1280, 720), (1400, 880)):
        ready.resize(*size)
        settle()
        assert all(ready.predictions.text_fits(i) for i in range(5)), size


def test_train_waits_for_a_folder_and_the_progress_bar_is_slim(make_window):
    window = make_window()
    window.set_view("finetune")
    training = window.panels["finetune"].training
    assert not training.train.isEnabled() and "folder" in training.train.toolTip()
    training.set_running(False)  # a run ending without a folder (never) must not enable it either
    assert not training.train.isEnabled()
    window.panels["finetune"].data.usable_changed.emit(True)
    assert training.train.isEnabled()
    assert training.progress.height() <= 12


def test_a_tiny_photo_says_how_much_the_model_enlarges_it(qtbot, ready):
    with qtbot.waitSignal(ready.session.image_loaded, timeout=STEP_MS):
        ready.session.set_image(image_from_array(np.zeros((1, 1, 3), np.uint8)))
    caption = ready.side.photo_caption.text()
    assert "1×1 px" in caption and "enlarged 256×" in caption and "224×224" in caption
    ready.resize(1024, 700)
    settle()
    assert not short_labels(ready) and not text_over_plots(ready) and ready.height() == 700
    with qtbot.waitSignal(ready.session.image_loaded, timeout=STEP_MS):
        ready.session.set_image(image_from_array(np.zeros((300, 400, 3), np.uint8)))
    assert "enlarged" not in ready.side.photo_caption.text()
