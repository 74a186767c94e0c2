"""Model registry: bundled weights, key remap, zoo without downloads, safe file loading."""
import os

import pytest
import timm
import torch
from torch import nn

from convviz.core.model.lite import STAGE_DEPTHS, bundled_weights_path, remap_key, remap_keys
from convviz.core.model.files import checkpoint_dict, save_checkpoint
from convviz.core.model.preprocess import Preprocess
from convviz.core.model.loading import ModelError, PickledModelError, load_model


@pytest.fixture(scope="module")
def lite0():
    return load_model("default")


def test_remap_is_strict_key_and_shape_match():
    source = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
    renamed = remap_keys(source)
    target = timm.create_model("tf_efficientnet_lite0").state_dict()
    assert len(renamed) == len(source) == len(target)
    assert set(renamed) == set(target)
    assert all(renamed[k].shape == target[k].shape for k in target)


def test_remap_block_layout():
    assert sum(STAGE_DEPTHS) == 16
    assert remap_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert remap_key("_blocks.1._expand_conv.weight") == "blocks.1.0.conv_pw.weight"
    assert remap_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert remap_key("_blocks.14._bn1.running_var") == "blocks.5.3.bn2.running_var"
    with pytest.raises(KeyError):
        remap_key("_blocks.0._expand_conv.weight")  # block 0 has no expand conv
    with pytest.raises(KeyError):
        remap_key("_blocks.16._bn0.weight")


def _top(loaded, rgb, k=3):
    with torch.no_grad():
        probs = loaded.module(loaded.preprocess.to_tensor(rgb)).softmax(-1)[0]
    return [loaded.label_names(1000)[i] for i in probs.topk(k).indices]


def test_bundled_model_knows_cat_and_espresso(lite0, sample_path):
    from convviz.core.images import load_image

    assert "tabby" in _top(lite0, load_image(sample_path("cat")).rgb)
    assert _top(lite0, load_image(sample_path("coffee")).rgb, 1) == ["espresso"]
    assert lite0.preprocess.interpolation == "bicubic" and lite0.preprocess.input_size == 224
    assert not lite0.module.training


def test_zoo_never_downloads(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("a download was attempted"))
    with pytest.raises(ModelError, match="not in the local cache"):
        load_model("resnet18")
    loaded = load_model("resnet18", require_weights=False)
    assert not loaded.pretrained and "random weights" in loaded.note


def test_zoo_uses_cached_weights(monkeypatch, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    reference = torch.nn.Module()
    import torchvision

    reference = torchvision.models.squeezenet1_1()
    torch.save(reference.state_dict(), checkpoints / "squeezenet1_1-b8a52dc0.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    loaded = load_model("squeezenet1_1")
    assert loaded.pretrained
    assert torch.equal(loaded.module.features[0].weight, reference.features[0].weight)


def test_unknown_names_suggest(tmp_path):
    with pytest.raises(ModelError, match="did you mean resnet18"):
        load_model("resnt18")
    with pytest.raises(ModelError, match="unknown timm model"):
        load_model("timm:not_a_model_xyz")


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('CONVVIZ_PWNED', '/tmp/convviz-pwned')}",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CONVVIZ_PWNED", str(marker))
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Evil()}, path)
    with pytest.raises(ModelError, match="refused") as info:
        load_model(str(path))
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_full_pickled_model_needs_opt_in(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), path)
    with pytest.raises(ModelError, match="refused"):
        load_model(str(path))
    with pytest.warns(UserWarning, match="unpickling"):
        loaded = load_model(str(path), allow_pickle=True)
    assert isinstance(loaded.module, nn.Sequential)


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint at all", os.urandom(4096)])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert "model.pth" in str(info.value) and "\n" not in str(info.value)


def test_state_dict_for_named_architecture(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(num_classes=3)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    loaded = load_model(f"resnet18={tmp_path / 'r18.pth'}")
    assert torch.equal(loaded.module.fc.weight, source.fc.weight)
    assert loaded.label_names(3) == ("class 0", "class 1", "class 2")
    with pytest.raises(ModelError, match="name its architecture"):
        load_model(str(tmp_path / "r18.pth"))


def test_state_dict_that_does_not_fit_names_keys(tmp_path):
    import torchvision

    state = torchvision.models.resnet18().state_dict()
    state.pop("layer1.0.conv1.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ModelError, match=r"1 missing key \(layer1.0.conv1.weight\).*1 unexpected key \(extra.weight\)"):
        load_model(f"resnet18={tmp_path / 'broken.pth'}")


def test_safetensors_state_dict(tmp_path):
    from safetensors.torch import save_file

    model = timm.create_model("resnet10t", num_classes=5)
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    loaded = load_model(f"timm:resnet10t={tmp_path / 'w.safetensors'}")
    assert torch.equal(loaded.module.fc.weight, model.fc.weight)


def test_torchscript_file(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 4)).eval()
    path = tmp_path / "net.ts"
    torch.jit.script(net).save(str(path))
    with pytest.raises(PickledModelError, match="TorchScript"):
        load_model(str(path))
    loaded = load_model(str(path), allow_pickle=True)
    assert loaded.scripted
    x = torch.randn(1, 3, 16, 16)
    assert torch.allclose(loaded.module(x), net(x))
    assert "TorchScript" in loaded.title


def test_convviz_checkpoint_round_trip(tmp_path):
    import torchvision

    model = torchvision.models.squeezenet1_1(num_classes=2)
    path = tmp_path / "tuned.pt"
    save_checkpoint(str(path), checkpoint_dict(model, arch="squeezenet1_1", labels=["cat", "dog"],
                                               preprocess=Preprocess(input_size=192), training={}))
    assert os.listdir(tmp_path) == ["tuned.pt"]
    loaded = load_model(str(path))
    assert loaded.labels == ("cat", "dog") and loaded.preprocess.input_size == 192
    assert torch.equal(loaded.module.classifier[1].weight, model.classifier[1].weight)


def test_timm_uses_weights_from_the_local_hub_cache(tmp_path, monkeypatch):
    import huggingface_hub
    from safetensors.torch import save_file

    reference = timm.create_model("resnet10t")
    cached = tmp_path / "model.safetensors"
    save_file(reference.state_dict(), str(cached))
    asked = []

    def from_cache(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(cached) if filename == "model.safetensors" else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", from_cache)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("a download was attempted"))
    loaded = load_model("timm:resnet10t")
    assert loaded.pretrained and asked[0][0].startswith("timm/resnet10t")
    assert torch.equal(loaded.module.fc.weight, reference.fc.weight)
