"""``convviz cam`` and ``convviz detect``: JSON answers equal the core's, PNGs are written, bad input is one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from convviz.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def composite_file(tmp_path_factory):
    from convviz.core.images import load_image
    from convviz.ui.settings import sample_path

    cat = load_image(sample_path("cat")).rgb
    coffee = np.asarray(Image.fromarray(load_image(sample_path("coffee")).rgb).resize((450, 300), Image.BICUBIC))
    path = tmp_path_factory.mktemp("where") / "cat_and_coffee.png"
    Image.fromarray(np.concatenate([cat[:, :450], coffee], 1)).save(path)
    return path


def test_cam_json_is_the_core_result_and_the_png_is_written(capsys, tmp_path, sample_path):
    from convviz.core.images import load_image
    from convviz.core.model.loading import load_model
    from convviz.core.where.gradcam import grad_cam

    out = tmp_path / "cam.png"
    code, stdout, _ = run(capsys, "cam", sample_path("cat"), "--class", "tiger cat", "--out", out, "--json")
    result = json.loads(stdout)
    assert code == 0 and result["class"] == "tiger cat" and result["index"] == 282 and result["layer"] == "bn2"
    core = grad_cam(load_model("default"), load_image(sample_path("cat")).rgb, 282)
    assert result["box"] == [round(v, 1) for v in core.box] and result["score"] == pytest.approx(core.logit, abs=1e-4)
    assert result["stride"] == 32 and result["window"] == 851 and result["map"] == [7, 7]
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width == 451 and png.height > 300  # the photo and its legend below


def test_cam_at_another_layer_gives_that_layers_stride(capsys, tmp_path, sample_path):
    code, stdout, _ = run(capsys, "cam", sample_path("cat"), "--layer", "blocks.4", "--out", tmp_path / "c.png", "--json")
    result = json.loads(stdout)
    assert code == 0 and result["layer"] == "blocks.4" and result["stride"] == 16 and result["map"] == [14, 14]


@pytest.mark.parametrize("method", ["dense", "windows"])
def test_detect_json_finds_the_cat_and_the_coffee(capsys, tmp_path, composite_file, method):
    code, stdout, _ = run(capsys, "detect", composite_file, "--method", method, "--out", tmp_path / "d.png", "--json")
    result = json.loads(stdout)
    assert code == 0 and result["method"] == method and result["boxes"]
    best = {}
    for box in result["boxes"]:
        group = "cat" if box["index"] in (281, 282, 285) else "coffee" if box["index"] in (967, 968, 504) else None
        if group and box["score"] > best.get(group, {"score": -1})["score"]:
            best[group] = box
    assert (best["cat"]["box"][0] + best["cat"]["box"][2]) / 2 < 450 < (best["coffee"]["box"][0] + best["coffee"]["box"][2]) / 2
    if method == "dense":
        assert result["map"] == [9, 25] and result["window"] == 851 and result["stride"] == 32
        assert result["input"] == [776, 259] and result["layer"] == "bn2" and result["exact"] is False
    else:
        assert result["windows"] == 33 + 16 + 5 and result["sizes"] == [150, 225, 300]
    assert (tmp_path / "d.png").stat().st_size > 1000


def test_detect_classes_and_segment(capsys, tmp_path, composite_file):
    code, stdout, _ = run(capsys, "detect", composite_file, "--classes", "espresso,281", "--out", tmp_path / "d.png", "--json")
    assert code == 0 and {b["label"] for b in json.loads(stdout)["boxes"]} <= {"espresso", "tabby"}
    code, stdout, _ = run(capsys, "detect", composite_file, "--segment", "--classes", "Egyptian cat,espresso",
                          "--out", tmp_path / "s.png", "--json")
    segments = json.loads(stdout)["segments"]
    assert code == 0 and [s["label"] for s in segments] == ["Egyptian cat", "espresso"]
    assert all(0.05 < s["fraction"] < 0.6 for s in segments)


@pytest.fixture(scope="module")
def headless_file(tmp_path_factory):
    """mobilenet_v3_small's random weights: its head is Linear → Hardswish → Dropout → Linear."""
    import torchvision

    path = tmp_path_factory.mktemp("where") / "mnv3.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
    return path


@pytest.mark.parametrize("args, words", [
    (["cam", "{cat}", "--class", "1000"], "class 1000 is out of range: this model has 1000 classes (0–999)"),
    (["cam", "{cat}", "--class", "espreso"], "no class called 'espreso'"),
    (["cam", "{cat}", "--layer", "global_pool"], "global_pool: its output (1280) has no spatial extent"),
    (["cam", "{cat}", "--layer", "nope"], "no layer named 'nope'"),
    (["cam", "{cat}", "--threshold", "1.5"], "--threshold must be between 0 and 1, not 1.5"),
    (["detect", "{cat}", "--input-size", "4000"], "input size must be from 32 to 2048 pixels, not 4000"),
    (["detect", "{cat}", "--model", "mobilenet_v3_small={headless}"], "no linear head to turn into a 1×1 convolution"),
    (["detect", "{cat}", "--classes", "999,1000"], "class 1000 is out of range"),
    (["detect", "{cat}", "--method", "windows", "--segment"], "--input-size and --segment belong to --method dense"),
])
def test_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, sample_path, headless_file, args, words):
    out = tmp_path / "x.png"
    argv = [a.format(cat=sample_path("cat"), headless=headless_file) for a in args] + ["--out", out]
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2 and stdout == "" and not out.exists()
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], stderr
