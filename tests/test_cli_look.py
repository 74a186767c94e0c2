"""`convviz top-patches | compare | erf`: JSON and PNG on a tiny model, a real fine-tune compared with
its start, and one `error:` line (exit 2, nothing written) for each kind of bad input."""
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATS_DOGS = os.path.join(ROOT, "..", "shared", "data", "cats-dogs-60")


def save_tiny(path, arch="mobilenet_v3_small", scale=None):
    torch.manual_seed(0)
    module, _, _, _ = build_architecture(arch, num_classes=3)
    if scale is not None:
        with torch.no_grad():
            module.features[0][0].weight.mul_(scale)
    torch.save(checkpoint_dict(module, arch=arch, labels=["a", "b", "c"],
                               preprocess=Preprocess(input_size=48, crop_pct=1.0), training={}), path)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("m") / "tiny.pt")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for c, colour in (("blue", (40, 40, 200)), ("red", (200, 40, 40))):
        os.makedirs(root / c)
        for i in range(6):
            arr = np.clip(np.array(colour) + rng.integers(-60, 60, (44, 52, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    (root / "notes.txt").write_text("not a photo")
    return str(root)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(capsys, *argv, out_file=None):
    code, stdout, stderr = run(capsys, *argv)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and stdout == "" and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    if out_file is not None:
        assert not os.path.exists(out_file)
    return lines[0][len("error: "):]


def test_top_patches_json_and_png(capsys, tmp_path, tiny, folder):
    out = tmp_path / "tp.png"
    code, stdout, stderr = run(capsys, "top-patches", folder, "--layer", "features.2", "--channel", "3", "--model", tiny,
                               "--out", out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["images"] == 12 and [os.path.basename(p) for p, _ in report["skipped"]] == ["notes.txt"]
    (channel,) = report["channels"]
    values = [p["value"] for p in channel["patches"]]
    assert channel["channel"] == 3 and len(values) == 9 and values == sorted(values, reverse=True)
    assert all(p["path"].startswith(folder) for p in channel["patches"])
    assert Image.open(out).format == "PNG"
    code, stdout, stderr = run(capsys, "top-patches", folder, "--layer", "features.2", "--channels", "0-3",
                               "--model", tiny, "--out", tmp_path / "rows.png", "--json")
    assert code == 0 and [c["channel"] for c in json.loads(stdout)["channels"]] == [0, 1, 2, 3]
    # the second run over the same folder and layer: the same patches (one pass serves every channel)
    again = next(c for c in json.loads(stdout)["channels"] if c["channel"] == 3)
    assert [p["value"] for p in again["patches"]] == pytest.approx(values)


def test_compare_a_real_fine_tune_with_its_start(capsys, tmp_path, tiny, folder):
    tuned = str(tmp_path / "ft.pt")
    code, _, stderr = run(capsys, "finetune", folder, "--model", tiny, "--epochs", "10", "--graph", "eager",
                          "--plain-head", "--out", tuned)
    assert code == 0, stderr
    image = os.path.join(folder, "red", "0.png")
    code, stdout, stderr = run(capsys, "compare", image, "--model", tiny, "--model", tuned, "--out", tmp_path / "c.png", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    replaced = [c for c in report["changes"] if c["status"] == "replaced"]
    assert [(c["layer"], c["note"]) for c in replaced] == [("classifier.3", "3 → 2 outputs")]
    assert all(c["change"] == 0.0 for c in report["changes"] if c["status"] != "replaced")  # frozen: not a bit moved
    assert sorted(p["label"] for p in report["predictions_b"]) == ["blue", "red"]
    assert report["summary"].endswith("classifier.3 replaced (3 → 2 outputs)")
    assert Image.open(tmp_path / "c.png").format == "PNG"


def test_compare_measures_the_moved_layer(capsys, tmp_path, tiny, folder):
    moved = save_tiny(tmp_path / "moved.pt", scale=1.5)
    code, stdout, stderr = run(capsys, "compare", os.path.join(folder, "red", "1.png"), "--model", tiny, "--model", moved,
                               "--layer", "features.0.0", "--out", tmp_path / "c.png", "--json")
    assert code == 0, stderr
    changed = [c for c in json.loads(stdout)["changes"] if c["status"] != "unchanged"]
    assert [c["layer"] for c in changed] == ["features.0.0"] and changed[0]["change"] == pytest.approx(0.5, rel=1e-6)


def test_erf_json_and_png(capsys, tmp_path, tiny, folder):
    image = os.path.join(folder, "blue", "0.png")
    code, stdout, stderr = run(capsys, "erf", image, "--layer", "features.3", "--model", tiny, "--out", tmp_path / "e.png",
                               "--json", "--average")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["unit"] == [3, 3] and report["channel"] is None and 0 < report["share"] <= 1
    assert len(report["layer_average"]["units"]) == 16 and report["sentence"].startswith("90 % of")
    code, stdout, _ = run(capsys, "erf", image, "--layer", "features.3", "--unit", "1,2", "--channel", "5", "--model", tiny,
                          "--out", tmp_path / "e2.png", "--json")
    assert code == 0 and json.loads(stdout)["unit"] == [1, 2] and json.loads(stdout)["channel"] == 5
    assert Image.open(tmp_path / "e2.png").format == "PNG"


def test_bad_input_is_one_line(capsys, tmp_path, tiny, folder):
    out = str(tmp_path / "x.png")
    (tmp_path / "empty").mkdir()
    assert one_error(capsys, "top-patches", tmp_path / "empty", "--layer", "features.2", "--model", tiny, "--out", out,
                     out_file=out).startswith("empty: the folder is empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hello")
    assert "none of its 1 files is an image" in one_error(
        capsys, "top-patches", tmp_path / "text", "--layer", "features.2", "--model", tiny, "--out", out, out_file=out)
    assert one_error(capsys, "top-patches", folder, "--layer", "features.2", "--channel", "24", "--model", tiny,
                     "--out", out, out_file=out) == "channel 24 is out of range: features.2 has 24 channels (0–23)"
    assert "has 24 channels" in one_error(capsys, "top-patches", folder, "--layer", "features.2", "--channels", "20-30",
                                          "--model", tiny, "--out", out, out_file=out)
    assert "give a range" in one_error(capsys, "top-patches", folder, "--layer", "features.2", "--channels", "x",
                                       "--model", tiny, "--out", out, out_file=out)
    assert "no layer named 'features.99'" in one_error(capsys, "top-patches", folder, "--layer", "features.99",
                                                       "--model", tiny, "--out", out, out_file=out)
    image = os.path.join(folder, "red", "0.png")
    other = save_tiny(tmp_path / "resnet.pt", arch="resnet18")
    message = one_error(capsys, "compare", image, "--model", tiny, "--model", other, "--out", out, out_file=out)
    assert message.startswith("the two models' architectures do not match (") and message.count(". ") == 0
    assert "--model twice" in one_error(capsys, "compare", image, "--model", tiny, "--out", out, out_file=out)
    assert one_error(capsys, "erf", image, "--layer", "features.3", "--unit", "9,0", "--model", tiny, "--out", out,
                     out_file=out) == "unit (9, 0) is outside features.3's 6×6 map (rows 0–5, columns 0–5)"
    assert "give the row and column" in one_error(capsys, "erf", image, "--layer", "features.3", "--unit", "centre",
                                                  "--model", tiny, "--out", out, out_file=out)
    assert "does not exist" in one_error(capsys, "erf", image, "--layer", "features.3", "--model", tiny,
                                         "--out", tmp_path / "nowhere" / "e.png")


def test_top_patches_on_the_shared_cats_and_dogs(capsys, tmp_path):
    if not os.path.isdir(CATS_DOGS):  # CI always has ../shared: there a missing folder is a failure, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("../shared/data/cats-dogs-60 is not here")
    code, stdout, stderr = run(capsys, "top-patches", CATS_DOGS, "--layer", "blocks.1", "--channels", "0-1",
                               "--out", tmp_path / "cd.png", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["images"] == 60 and report["rf"] == [19, 19]
    assert all(len(c["patches"]) == 9 for c in report["channels"])
