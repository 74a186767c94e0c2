"""The command line: JSON answers checked against torch, exit code 2 and one line on bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from convviz.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_json(capsys, sample_path):
    code, out, _ = run(capsys, "predict", sample_path("cat"), "--json", "--topk", "3")
    result = json.loads(out)
    assert code == 0 and set(result) >= {"model", "image", "top"}
    assert len(result["top"]) == 3 and "tabby" in [t["label"] for t in result["top"]]
    assert result["top"][0]["prob"] >= result["top"][1]["prob"] > 0
    assert all(set(t) == {"label", "index", "prob"} for t in result["top"])


def test_layers_json_matches_torch(capsys):
    code, out, _ = run(capsys, "layers", "--model", "resnet18", "--input-size", "100", "--json")
    table = json.loads(out)
    assert code == 0 and table["input"] == [3, 100, 100]
    rows = {r["name"]: r for r in table["layers"]}
    import torchvision

    model = torchvision.models.resnet18().eval()
    x = torch.zeros(1, 3, 100, 100)
    with torch.no_grad():
        assert rows["conv1"]["out_shape"] == list(model.conv1(x).shape[1:])
        assert rows["layer4"]["out_shape"] == list(model.layer4(model.layer3(model.layer2(model.layer1(
            model.maxpool(model.relu(model.bn1(model.conv1(x)))))))).shape[1:])
    first = rows["conv1"]
    assert (first["kernel"], first["stride"], first["padding"], first["dilation"]) == ([7, 7], [2, 2], [3, 3], [1, 1])
    assert isinstance(first["rf"], int) and isinstance(first["jump"], int)
    assert set(first) >= {"name", "type", "out_shape", "kernel", "stride", "padding", "dilation", "rf", "jump", "start"}


def test_activations_png_and_npy(capsys, tmp_path, sample_path):
    png, npy = tmp_path / "m.png", tmp_path / "a.npy"
    code, _, _ = run(capsys, "activations", sample_path("cat"), "--layer", "conv_stem", "--out", str(png), "--npy", str(npy))
    assert code == 0
    array = np.load(npy)
    assert array.shape == (32, 112, 112)
    from convviz.core.model.loading import load_model
    from convviz.core.images import load_image

    loaded = load_model("default")
    with torch.no_grad():
        expected = loaded.module.conv_stem(loaded.preprocess.to_tensor(load_image(sample_path("cat")).rgb))[0]
    assert np.allclose(array, expected.numpy(), atol=1e-5)
    assert Image.open(png).size[0] > 100


@pytest.mark.parametrize("argv, fragment", [
    (["predict", "MISSING.jpg"], "no such file"),
    (["predict", __file__], "not an image"),
    (["predict", "IMG", "--model", "resnt18"], "did you mean resnet18"),
    (["predict", "IMG", "--topk", "0"], "--topk"),
    (["layers", "--model", "nope.pth"], "no such file"),
    (["activations", "IMG", "--layer", "conv_stemm", "--out", "/tmp/x.png"], "did you mean conv_stem"),
    (["activations", "IMG", "--layer", "conv_stem", "--out", "/no/such/dir/x.png"], "does not exist"),
])
def test_bad_input_exit_2_one_line(capsys, sample_path, argv, fragment):
    argv = [sample_path("cat") if a == "IMG" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_no_traceback(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    result = subprocess.run([sys.executable, "-m", "convviz.cli", "layers", "--model", str(bad), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("error: bad.pth: not a PyTorch checkpoint") and "Traceback" not in result.stderr
    usage = subprocess.run([sys.executable, "-m", "convviz.cli", "predict"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and "error:" in usage.stderr
