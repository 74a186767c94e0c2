"""`convviz finetune`: JSON summary, predict with the new classes, one-line errors on bad input."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from convviz.cli import main
from convviz.core.finetune import checkpoint_dict
from convviz.core.model.loading import build_architecture
from convviz.core.model.preprocess import Preprocess

KEYS = {"classes", "train_images", "val_images", "val_accuracy", "per_class_accuracy", "confusion", "seconds", "out"}


def make_folder(root, classes=("blue", "red"), per_class=6):
    rng = np.random.default_rng(0)
    colours = {"red": (200, 40, 40), "blue": (40, 40, 200)}
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            arr = np.clip(np.array(colours[c]) + rng.integers(-40, 40, (40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(os.path.join(root, c, f"{i}.jpg"))
    return str(root)


@pytest.fixture(scope="module")
def tiny_start(tmp_path_factory):
    """A random-weight mobilenet_v3_small as a convviz checkpoint (no download needed) at 32 px."""
    torch.manual_seed(0)
    module, _, _, _ = build_architecture("mobilenet_v3_small", num_classes=3)
    path = str(tmp_path_factory.mktemp("start") / "tiny.pt")
    torch.save(checkpoint_dict(module, arch="mobilenet_v3_small", labels=["a", "b", "c"],
                               preprocess=Preprocess(input_size=32, crop_pct=1.0), training={}), path)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_finetune_json_then_predict_new_classes(capsys, tmp_path, tiny_start):
    data = make_folder(tmp_path / "data")
    out = str(tmp_path / "ft.pt")
    code, stdout, stderr = run(capsys, "finetune", data, "--model", tiny_start, "--epochs", "20", "--graph", "eager",
                               "--json", "--out", out)
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert set(summary) == KEYS and summary["classes"] == ["blue", "red"]
    assert summary["train_images"] + summary["val_images"] == 12 and summary["out"] == out
    assert sum(map(sum, summary["confusion"])) == summary["val_images"]
    assert "%" in stderr  # tqdm progress bar on stderr
    # mobilenet has no stages to tap; its predictions average each photo with its mirror image, as evaluated
    assert torch.load(out, weights_only=True)["head"] == {"taps": [], "pool": "mean", "mirror": True}
    code, stdout, _ = run(capsys, "predict", os.path.join(data, "red", "0.jpg"), "--model", out, "--json", "--topk", "2")
    assert code == 0 and {t["label"] for t in json.loads(stdout)["top"]} == {"blue", "red"}


def test_full_loop_with_augmentation(capsys, tmp_path, tiny_start):
    data = make_folder(tmp_path / "data")
    code, stdout, stderr = run(capsys, "finetune", data, "--model", tiny_start, "--epochs", "1", "--freeze", "last:1",
                               "--augment", "hflip,crop", "--batch-size", "4", "--json", "--out", str(tmp_path / "a.pt"),
                               "--plain-head")
    assert code == 0, stderr
    assert json.loads(stdout)["classes"] == ["blue", "red"]
    assert torch.load(tmp_path / "a.pt", weights_only=True)["head"] == {"taps": [], "pool": "mean", "mirror": False}


@pytest.mark.parametrize("case, expected", [
    ("empty", "no class folders"),
    ("one_class", "only one class"),
    ("unwritable", "cannot write"),
    ("bad_augment", "unknown augmentation 'blur'"),
    ("bad_freeze", "unknown freeze strategy"),
    ("other_arch", "does not fit"),
    pytest.param("no_cuda", "no CUDA device", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")),
])
def test_bad_input_is_one_line(capsys, tmp_path, tiny_start, case, expected):
    data = tmp_path / "data"
    data.mkdir()
    args = ["finetune", str(data), "--model", tiny_start, "--out", str(tmp_path / "o.pt")]
    if case == "one_class":
        make_folder(data, classes=("red",))
    elif case != "empty":
        make_folder(data)
    if case == "unwritable":
        args[-1] = str(tmp_path / "no" / "such" / "o.pt")
    elif case == "bad_augment":
        args += ["--augment", "hflip,blur"]
    elif case == "bad_freeze":
        args += ["--freeze", "half"]
    elif case == "no_cuda":
        args += ["--device", "cuda"]
    elif case == "other_arch":
        state = torch.load(tiny_start, weights_only=True)["state_dict"]
        torch.save(state, tmp_path / "sd.pt")
        args[3] = f"resnet18={tmp_path / 'sd.pt'}"
    code, stdout, stderr = run(capsys, *args)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], stderr


def test_finetune_writes_no_onnxruntime_telemetry(tmp_path):
    """A default (ONNX Runtime) fine-tune in a fresh process with an empty home and cache: no device id,
    no telemetry store, nothing of onnxruntime's anywhere under them (convviz sets ORT_DISABLE_TELEMETRY)."""
    import subprocess
    import sys

    from convviz.core.finetune import onnx_backbone

    if not onnx_backbone.available():
        pytest.fail("onnxruntime is a dependency: the fast path must be testable here")
    home = tmp_path / "home"
    home.mkdir()
    data = make_folder(tmp_path / "data", per_class=5)
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), CONVVIZ_CACHE_DIR=str(home / "convviz"))
    code = ("import sys; from convviz.cli import main; import onnxruntime; "
            f"sys.exit(main(['finetune', {data!r}, '--out', {str(tmp_path / 'm.pt')!r}, '--json']))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["val_images"] > 0
    written = [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()]
    assert not [p for p in written if "onnxruntime" in p.lower() or "microsoft" in p.lower()], written


def test_finetune_lite1_reloads_as_the_trained_network(capsys, tmp_path):
    """A bundled Lite1 (with convviz[lite]) fine-tunes and its checkpoint reloads as tf_efficientnet_lite1."""
    from convviz.core.model.loading import load_model

    data = make_folder(tmp_path / "data", per_class=4)
    out = str(tmp_path / "lite1.pt")
    code, stdout, stderr = run(capsys, "finetune", data, "--model", "lite1", "--graph", "eager", "--input-size", "64",
                               "--json", "--out", out)
    assert code == 0, stderr
    assert json.loads(stdout)["classes"] == ["blue", "red"]
    payload = torch.load(out, weights_only=True)
    assert payload["arch"] == "lite1"
    loaded = load_model(out)
    assert type(loaded.module.conv_stem).__name__ == "Conv2dSame" and len(loaded.module.blocks[1]) == 3
    assert loaded.preprocess.input_size == 64 and loaded.preprocess.std[0] * 255 == pytest.approx(128)


def test_second_run_reads_cached_features_and_imports_no_onnx(tmp_path):
    """Run 1 computes every feature; run 2 (same folder) needs no backbone at all: neither onnx nor
    onnxruntime is imported; run 3 (one new photo) uses the filled graph cached by run 1 (no onnx
    import, 1.5 s) for that photo alone. Same accuracy every time."""
    import shutil
    import subprocess
    import sys

    data = make_folder(tmp_path / "data", per_class=6)
    env = dict(os.environ, CONVVIZ_FEATURE_CACHE="1", CONVVIZ_CACHE_DIR=str(tmp_path / "cache"))
    code = ("import json, sys; from convviz.cli import main; code = main([*sys.argv[1:], '--json']); "
            "print(json.dumps({'onnx': 'onnx' in sys.modules, 'ort': 'onnxruntime' in sys.modules})); sys.exit(code)")

    def finetune():
        done = subprocess.run([sys.executable, "-c", code, "finetune", data, "--out", str(tmp_path / "m.pt")], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        summary, imported = (json.loads(line) for line in done.stdout.strip().splitlines())
        return summary, imported

    first, imported = finetune()
    assert imported == {"onnx": True, "ort": True}
    second, imported = finetune()
    assert imported == {"onnx": False, "ort": False} and second["val_accuracy"] == first["val_accuracy"]
    shutil.copy(os.path.join(data, "red", "0.jpg"), os.path.join(data, "red", "copy.jpg"))
    Image.open(os.path.join(data, "red", "copy.jpg")).rotate(90).save(os.path.join(data, "red", "copy.jpg"))
    third, imported = finetune()
    assert imported == {"onnx": False, "ort": True} and third["train_images"] + third["val_images"] == 13


def test_finetune_text_output_says_what_the_head_reads(capsys, tmp_path):
    """The bundled model's head reads tapped stages: the text summary names them, as the saved file records."""
    data = make_folder(tmp_path / "data")
    out = str(tmp_path / "ft.pt")
    code, stdout, stderr = run(capsys, "finetune", data, "--epochs", "20", "--out", out)
    assert code == 0, stderr
    head = torch.load(out, weights_only=True)["head"]
    reads = [line for line in stdout.splitlines() if line.startswith("The head reads")]
    assert len(reads) == 1 and "blocks.4" in reads[0] and "blocks.5" in reads[0]
    assert ("log standard deviation" in reads[0]) == (head["pool"] == "mean+logstd")
    assert stdout.splitlines()[-1].startswith("saved ")
