"""Pictures the user saves are written whole or not at all, through core.atomic (one home)."""
import os

import numpy as np
from PIL import Image
from PySide6.QtGui import QColor, QImage

from convviz.ui.widgets.save import save_png


def test_widgets_and_arrays_save_as_png_atomically(qtbot, tmp_path):
    image = QImage(8, 6, QImage.Format.Format_RGB32)
    image.fill(QColor(10, 200, 30))
    assert save_png(image, str(tmp_path / "grab.png")) == ""
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 255
    assert save_png(rgb, str(tmp_path / "array.png")) == ""
    assert sorted(os.listdir(tmp_path)) == ["array.png", "grab.png"]  # no temp file left
    with Image.open(tmp_path / "grab.png") as saved:
        assert saved.size == (8, 6) and saved.convert("RGB").getpixel((0, 0)) == (10, 200, 30)
    with Image.open(tmp_path / "array.png") as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), rgb)


def test_an_unwritable_path_is_one_line_and_leaves_nothing(qtbot, tmp_path):
    problem = save_png(np.zeros((4, 4, 3), np.uint8), str(tmp_path / "missing" / "x.png"))
    assert problem.startswith("cannot write") and "does not exist" in problem and "\n" not in problem
    assert os.listdir(tmp_path) == []
