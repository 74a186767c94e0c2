"""Hostile model files: code needs the opt-in, checkpoints are validated before anything is built,
compressed archives are refused before they are inflated."""
import os
import sys

import pytest
import torch

from convviz.core.model import loading as models
from convviz.core.model.files import MAX_INFLATED_BYTES, ModelError, PickledModelError, pickle_globals
from convviz.core.model.loading import load_model

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import hostile_corpus as corpus  # noqa: E402


@pytest.mark.parametrize("name", ["evil.ts", "evil.pt", "evil.pth", "weights.safetensors.zip"])
def test_torchscript_runs_only_with_the_opt_in(tmp_path, name):
    marker = tmp_path / "marker"
    path = corpus.torchscript_marker(tmp_path, str(marker), name)
    with pytest.raises(PickledModelError, match="TorchScript") as info:
        load_model(str(path))
    assert "\n" not in str(info.value)
    assert not marker.exists() and not (tmp_path / "marker.load").exists()
    loaded = load_model(str(path), allow_pickle=True)
    assert (tmp_path / "marker.load").read_bytes() == b"LOAD", "the opt-in really loads the code"
    assert loaded.scripted and not marker.exists()
    loaded.module(torch.zeros(1, 3, 8, 8))
    assert marker.read_bytes() == b"RUN\n"


def test_torchscript_is_not_a_weights_file(tmp_path):
    path = corpus.torchscript_marker(tmp_path, str(tmp_path / "m"), "w.pth")
    with pytest.raises(ModelError, match="TorchScript"):
        load_model(f"resnet18={path}", allow_pickle=True)
    assert not (tmp_path / "m.load").exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickle_refusal_names_the_object_for_every_protocol(tmp_path, protocol):
    path = corpus.pickled_object(tmp_path, protocol)
    with pytest.raises(PickledModelError, match=r"\((posix|nt)\.system\)"):
        load_model(str(path))


def test_pickle_globals_reads_without_running():
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("exit 1",))
    for protocol in range(0, 6):
        assert any(g.endswith(".system") for g in pickle_globals(pickle.dumps([Evil()], protocol=protocol)))
    assert pickle_globals(b"\xff\xfe not a pickle") is None
    assert pickle_globals(pickle.dumps({"w": [1.0, 2.0]}, protocol=4)) == []


def test_arch_file_specs_honour_the_opt_in(tmp_path):
    import torchvision

    whole = torchvision.models.squeezenet1_1(num_classes=3)
    path = tmp_path / "whole.pth"
    torch.save(whole, path)
    with pytest.raises(PickledModelError):
        load_model(f"squeezenet1_1={path}")
    with pytest.warns(UserWarning, match="unpickling"):
        loaded = load_model(f"squeezenet1_1={path}", allow_pickle=True)
    assert torch.equal(loaded.module.classifier[1].weight, whole.classifier[1].weight)


def test_zip_bomb_refused_before_inflating(tmp_path, monkeypatch):
    path = corpus.zip_bomb(tmp_path, inflated_mb=MAX_INFLATED_BYTES // 2**20 + 16)
    assert os.path.getsize(path) < 2**20
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was reached"))
    for spec in (str(path), f"resnet18={path}"):
        with pytest.raises(ModelError, match="inflate"):
            load_model(spec)


GOOD_PRE = {"input_size": 64, "crop_pct": 0.875, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
            "interpolation": "bilinear"}


@pytest.mark.parametrize("fields, fragment", [
    ({"arch": 123}, "'arch'"),
    ({"arch": "resnet_9000"}, "unknown torchvision model"),
    ({"arch": "timm:nope_net"}, "unknown timm model"),
    ({"labels": "cat,dog"}, "'labels'"),
    ({"labels": []}, "'labels'"),
    ({"labels": ["cat", 7]}, "'labels'"),
    ({"labels": ["cat", ""]}, "'labels'"),
    ({"labels": ["a", "b", "c"]}, "3 names but the classifier has 2 outputs"),
    ({"preprocess": "big"}, "'preprocess'"),
    ({"preprocess": {**GOOD_PRE, "input_size": 20000}}, "input_size"),
    ({"preprocess": {**GOOD_PRE, "input_size": True}}, "input_size"),
    ({"preprocess": {**GOOD_PRE, "input_size": "224"}}, "input_size"),
    ({"preprocess": {**GOOD_PRE, "crop_pct": float("nan")}}, "crop_pct"),
    ({"preprocess": {**GOOD_PRE, "mean": [0.5, 0.5]}}, "mean"),
    ({"preprocess": {**GOOD_PRE, "mean": [0.5, float("inf"), 0.5]}}, "mean"),
    ({"preprocess": {**GOOD_PRE, "std": [0.2, 0.0, 0.2]}}, "std"),
    ({"preprocess": {**GOOD_PRE, "interpolation": "lanczos"}}, "interpolation"),
    ({"preprocess": {**GOOD_PRE, "evil": 1}}, "unknown key"),
    ({"training": {"weights": torch.zeros(2)}}, "'training'"),
    ({"state_dict": {"a": "not a tensor"}}, "not a state dict"),
    ({"head": "taps"}, "'head'"),
    ({"head": {"taps": "4,5"}}, "head.taps"),
    ({"head": {"taps": [4, 4]}}, "head.taps"),
    ({"head": {"taps": [-1]}}, "head.taps"),
    ({"head": {"taps": [True]}}, "head.taps"),
    ({"head": {"taps": [4], "pool": "max"}}, "head.pool"),
    ({"head": {"pool": ["mean"]}}, "head.pool"),
    ({"head": {"mirror": 1}}, "head.mirror"),
    ({"head": {"evil": 1}}, "unknown key"),
])
def test_crafted_checkpoint_fields_are_refused_in_one_line(tmp_path, monkeypatch, fields, fragment):
    built = []
    original = models.build_architecture
    monkeypatch.setattr(models, "build_architecture", lambda *a, **k: built.append(a) or original(*a, **k))
    path = corpus.checkpoint(tmp_path, **fields)
    with pytest.raises(ModelError, match=fragment) as info:
        load_model(path)
    assert "\n" not in str(info.value) and "ckpt.pt" in str(info.value)
    assert not built, "an architecture was built before the fields were checked"


def test_valid_checkpoint_keeps_its_fields(tmp_path):
    loaded = load_model(corpus.checkpoint(tmp_path))
    assert loaded.labels == ("cat", "dog")
    assert (loaded.preprocess.input_size, loaded.preprocess.std) == (64, (0.25, 0.25, 0.25))


def test_huge_architecture_is_checked_on_the_meta_device(tmp_path, monkeypatch):
    devices = []
    original = models.build_architecture

    def spy(*args, **kwargs):
        devices.append(torch.get_default_device().type)
        return original(*args, **kwargs)

    monkeypatch.setattr(models, "build_architecture", spy)
    path = corpus.huge_arch_checkpoint(tmp_path)
    assert os.path.getsize(path) < 4096
    with pytest.raises(ModelError, match="does not fit vit_h_14"):
        load_model(path)
    assert devices == ["meta"], "vit_h_14 (2.5 GB) must never be built for real from a 2 KB file"
    torch.save({"heads.head.weight": torch.zeros(2, 8)}, tmp_path / "sd.pth")
    devices.clear()
    with pytest.raises(ModelError, match="does not fit"):
        load_model(f"vit_h_14={tmp_path / 'sd.pth'}")
    assert devices == ["meta"]


def test_nan_weights_load_but_give_non_finite_logits(tmp_path):
    loaded = load_model(corpus.nan_checkpoint(tmp_path))
    with torch.no_grad():
        logits = loaded.module(torch.zeros(1, 3, 64, 64))
    assert not torch.isfinite(logits).all()  # the CLI refuses these predictions (tests/test_cli_hostile.py)
