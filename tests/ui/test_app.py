"""``python main.py``: screenshots, bad arguments, and a start-up that does not wait for torch."""
import argparse
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = os.path.join(ROOT, "main.py")


def run_main(*args, timeout=600):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVVIZ_SETTINGS_ORG="convviz-tests")
    return subprocess.run([sys.executable, MAIN, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("view", ["layers", "convolution"])
def test_screenshot_writes_a_png(tmp_path, view):
    from PIL import Image

    out = tmp_path / f"{view}.png"
    result = run_main("--screenshot", str(out), "--view", view)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as shot:
        assert shot.format == "PNG" and shot.size == (1400, 880)
        colors = shot.convert("RGB").getcolors(shot.width * shot.height)  # never None with this bound
    assert len(colors) > 1000  # a real picture (photo, maps), not an empty window


def test_screenshot_of_the_fractional_case_with_its_gif(tmp_path):
    from PIL import Image

    png, gif = tmp_path / "conv.png", tmp_path / "conv.gif"
    result = run_main("--screenshot", str(png), "--view", "convolution", "--conv", "7,3,3,0", "--gif", str(gif))
    assert result.returncode == 0, result.stderr
    with Image.open(gif) as anim:
        assert anim.n_frames == 4  # a 2×2 output: four window positions
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("args, needle", [
    (["--conv", "7,0,1,0"], "W, K, S, D ≥ 1"),
    (["--conv", "seven"], "expected integers"),
    (["--gif", "x.gif"], "--gif needs --screenshot"),
    (["--image", "no-such-photo.jpg", "--screenshot", "x.png"], "no-such-photo.jpg: no such image file"),
    (["--view", "nowhere"], "invalid choice"),
    (["--screenshot", "/no/such/folder/x.png"], "does not exist"),
])
def test_bad_arguments_exit_2_without_traceback(args, needle):
    result = run_main(*args, timeout=120)
    assert result.returncode == 2
    assert "error:" in result.stderr and needle in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_files_in_screenshot_mode_exit_2(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    result = run_main("--image", str(fake), "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: fake.jpg: ")
    assert "Traceback" not in result.stderr
    result = run_main("--model", "resnt18", "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "did you mean resnet18" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_exit_after_paint_reports_the_first_paint_before_torch_loads():
    """The window paints first; torch (3 s to import here) loads after, in the background."""
    result = run_main("--exit-after-paint", timeout=120)
    assert result.returncode == 0, result.stderr
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("first-paint ")]
    assert line and 0 < float(line[0].split()[1]) < 60
    assert line[0].split()[2] == "torch-loaded=False", line[0]


def test_the_window_modules_do_not_import_torch():
    code = ("import sys, json, convviz.app, convviz.ui.main_window, convviz.workers.session;"
            "print(json.dumps(sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_conv_option_reaches_tf_same_and_refuses_settings_the_panel_would_ignore():
    from convviz.app import _conv_settings

    assert _conv_settings("8,3,2,0,pad=tf") == {"W": 8, "K": 3, "S": 2, "P": 0, "pad": "tf"}
    for text, needle in (("7,3,2,0,mode=max,pad=tf", "Conv2d padding rule"), ("7,3,2,0,ceil", "ceil is for pooling")):
        with pytest.raises(argparse.ArgumentTypeError, match=needle):
            _conv_settings(text)
