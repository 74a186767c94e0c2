"""Activation capture against plain forward passes; in-place and reused modules; caching."""
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from convviz.core.activations import ActivationCache, Capturer, predict_top
from convviz.core.mosaic import channel_mosaic, tile_origin


def _reference_outputs(model, x):
    """Each module's output, cloned at once (so later in-place ops can't touch it)."""
    seen, names = {}, {m: n for n, m in model.named_modules() if n}

    def hook(module, args, out):
        if isinstance(out, torch.Tensor):
            seen.setdefault(names[module], out.detach().clone())

    handles = [m.register_forward_hook(hook) for m in names]
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    return logits, seen


@pytest.mark.parametrize("arch", ["resnet18", "googlenet", "lite0"])
def test_capture_equals_plain_forward(arch):
    torch.manual_seed(0)
    if arch == "lite0":
        import timm

        model = timm.create_model("efficientnet_lite0").eval()
    elif arch == "googlenet":
        model = torchvision.models.googlenet(aux_logits=False, init_weights=False).eval()
    else:
        model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 128, 128)
    logits, reference = _reference_outputs(model, x)
    capturer = Capturer(model)
    for attempt in ("learning pass", "pass with aliases"):
        capture = capturer(x)
        assert torch.equal(capture.logits, logits)
        assert set(reference) <= set(capture.outputs), attempt
        for name, expected in reference.items():
            assert torch.equal(capture.outputs[name], expected), (attempt, name)


class _Switch(nn.Module):
    """Returns its child's tensor, or (after ``flag`` flips) a tensor of its own."""

    def __init__(self):
        super().__init__()
        self.act, self.flag = nn.ReLU(), True

    def forward(self, x):
        return self.act(x) if self.flag else x * 2


def test_aliases_are_learned_once_and_relearned_when_the_graph_changes():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Identity(), _Switch()).eval()
    capturer = Capturer(model)
    x = torch.randn(1, 3, 8, 8)
    capturer(x)
    assert capturer.aliases == {"1": "0", "2": "2.act"}
    second = capturer(x)
    assert second.outputs["2"] is second.outputs["2.act"]
    assert torch.equal(second.outputs["1"], model[0](x))
    model[2].flag = False  # "2.act" is no longer called: the aliases no longer hold
    third = capturer(x)
    assert torch.equal(third.outputs["2"], model[0](x) * 2) and "2.act" not in third.outputs
    assert capturer.aliases == {"1": "0"}


def test_inplace_ops_do_not_corrupt_capture():
    """ResNet: ReLU(inplace) overwrites bn1's output, ``out += identity`` overwrites bn2's."""
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 96, 96)
    capture = Capturer(model)(x)
    with torch.no_grad():
        pre = model.bn1(model.conv1(x))
    assert (capture.outputs["bn1"] < 0).any(), "pre-ReLU values keep their negatives"
    assert torch.allclose(capture.outputs["bn1"], pre)
    assert torch.allclose(capture.inputs["relu"], pre)
    assert torch.allclose(capture.outputs["relu"], pre.relu())


def test_reused_module_recorded_per_call():
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 96, 96)
    capture = Capturer(model)(x)
    block = model.layer1[0]
    with torch.no_grad():
        y = capture.outputs["maxpool"]
        first = block.bn1(block.conv1(y)).relu()
        second = (block.bn2(block.conv2(first)) + y).relu()
    assert torch.allclose(capture.outputs["layer1.0.relu"], first, atol=1e-6)
    assert torch.allclose(capture.outputs["layer1.0.relu:2"], second, atol=1e-6)
    assert torch.allclose(capture.outputs["layer1.0"], second, atol=1e-6)


def test_conv_inputs_are_the_real_layer_inputs():
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 64, 64)
    capture = Capturer(model)(x)
    conv = model.layer2[0].conv1
    assert torch.allclose(conv(capture.inputs["layer2.0.conv1"]), capture.outputs["layer2.0.conv1"], atol=1e-5)
    assert torch.equal(capture.inputs["conv1"], x)


def test_cache_computes_once_per_model_and_image():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    cache = ActivationCache(max_items=2)
    calls = []

    def make():
        calls.append(1)
        return torch.randn(1, 3, 8, 8)

    a = cache.get(model, "cat", make)
    assert cache.get(model, "cat", make) is a
    cache.get(model, "dog", make)
    cache.get(model, "cow", make)
    assert cache.computed == 3 and len(calls) == 3
    cache.get(model, "cat", make)  # evicted: the oldest goes first
    assert cache.computed == 4


def test_predict_top_is_softmax_ranked():
    logits = torch.tensor([[0.0, 3.0, 1.0]])
    top = predict_top(logits, ["a", "b", "c"], k=2)
    assert [t["label"] for t in top] == ["b", "c"]
    assert top[0]["prob"] == pytest.approx(float(torch.softmax(logits, -1)[0, 1]))


def test_mosaic_tiles_hold_each_channel():
    maps = np.random.default_rng(0).normal(size=(10, 5, 7)).astype(np.float32)
    mosaic = channel_mosaic(maps)
    for c in (0, 3, 9):
        r, q = tile_origin(c, 10, (5, 7))
        tile = mosaic[r:r + 5, q:q + 7]
        expected = (maps[c] - maps[c].min()) / (maps[c].max() - maps[c].min())
        assert np.allclose(tile, expected, atol=1e-6)
    assert np.isnan(mosaic).any(), "gaps between tiles"
