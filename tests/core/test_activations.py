"""Activation capture against plain forward passes; in-place and reused modules; caching."""
import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from convviz.core.capture.cache import ActivationCache
from convviz.core.capture.activations import Capturer, predict_top
from convviz.core.views.mosaic import channel_mosaic, tile_origin




@pytest.fixture(scope="module")
def resnet18():
    """One seeded ResNet-18 (eval) for the tests that only read it."""
    torch.manual_seed(0)
    return torchvision.models.resnet18().eval()


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


def test_inplace_ops_do_not_corrupt_capture(resnet18):
    """ResNet: ReLU(inplace) overwrites bn1's output, ``out += identity`` overwrites bn2's."""
    model = resnet18
    x = torch.randn(1, 3, 96, 96)
    capture = Capturer(model)(x)
    with torch.no_grad():
        pre = model.bn1(model.conv1(x))
    assert (capture.outputs["bn1"] < 0).any(), "pre-ReLU values keep their negatives"
    assert torch.allclose(capture.outputs["bn1"], pre)
    assert torch.allclose(capture.inputs["relu"], pre)
    assert torch.allclose(capture.outputs["relu"], pre.relu())


def test_reused_module_recorded_per_call(resnet18):
    model = resnet18
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


def test_conv_inputs_are_the_real_layer_inputs(resnet18):
    model = resnet18
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


def test_cache_evicts_the_oldest_before_a_new_pass():
    """At most ``max_items`` captures are held, even while the next one is made: its memory is reused."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    cache = ActivationCache(max_items=2)
    held_during_pass = []
    model[0].register_forward_pre_hook(lambda *_: held_during_pass.append(len(cache._items)))
    for key in ("cat", "dog", "cow", "owl"):
        cache.get(model, key, lambda: torch.randn(1, 3, 8, 8))
    assert held_during_pass == [0, 1, 1, 1] and list(cache._items) == [
        (id(model), "cow", None, False), (id(model), "owl", None, False)]
    computed = cache.computed
    assert cache.cached(model, "cat") is None and cache.cached(model, "owl", layers=["0"]) is cache.cached(model, "owl")
    assert cache.cached(model, "owl", train=True) is None and cache.computed == computed, "a look-up runs nothing"


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


# --- batches, chosen layers, the caller's model left as it was, train/eval ---------------------------------


def _lite0():
    import timm

    torch.manual_seed(0)
    return timm.create_model("efficientnet_lite0").eval()


def _model_state(model):
    """Everything a capture could leave behind: hooks, wrapped forwards, flags, weights and buffers."""
    return {
        name: (
            dict(module._forward_hooks), dict(module._forward_pre_hooks), "forward" in module.__dict__,
            module.__dict__.get("inplace"), module.training,
        )
        for name, module in model.named_modules()
    }, {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same_state(model, before):
    flags, tensors = _model_state(model)
    assert flags == before[0]
    assert tensors.keys() == before[1].keys()
    for key, value in tensors.items():
        assert torch.equal(value, before[1][key]), key


@pytest.mark.parametrize("arch", ["resnet18", "lite0"])
def test_batch_capture_equals_per_image_forwards(arch, resnet18):
    model = resnet18 if arch == "resnet18" else _lite0()
    torch.manual_seed(1)
    xb = torch.randn(3, 3, 64, 64)
    capture = Capturer(model)(xb)
    assert capture.batch_size == 3
    batch_logits, batch_reference = _reference_outputs(model, xb)
    assert torch.equal(capture.logits, batch_logits)
    for name, expected in batch_reference.items():
        assert torch.equal(capture.outputs[name], expected), name
    for i in range(3):
        # a batch of 3 and a batch of 1 may take different kernels: equal up to float rounding
        logits, reference = _reference_outputs(model, xb[i:i + 1])
        torch.testing.assert_close(capture.logits[i:i + 1], logits, rtol=1e-5, atol=5e-5)
        assert set(reference) <= set(capture.outputs)
        for name, expected in reference.items():
            assert capture.outputs[name].shape[0] == 3, name
            torch.testing.assert_close(capture.outputs[name][i:i + 1], expected, rtol=1e-5, atol=5e-5,
                                       msg=f"image {i}, {name}")
        name = "layer1.0.relu:2" if arch == "resnet18" else "blocks.2.0.conv_dw"
        assert np.array_equal(capture.output_array(name, i), capture.outputs[name][i].numpy())
        assert predict_top(capture.logits, [str(k) for k in range(1000)], k=1, index=i)[0]["index"] == int(
            logits.argmax())
    with pytest.raises(IndexError, match="batch holds 3"):
        capture.output_array("conv1" if arch == "resnet18" else "conv_stem", 3)


def test_chosen_layers_only_are_recorded_with_identical_values(resnet18):
    model = resnet18
    torch.manual_seed(2)
    x = torch.randn(2, 3, 64, 64)
    full = Capturer(model)(x)
    asked = ["layer1.0.relu:2", "bn1", "layer2.0.conv1", "fc", "layer3"]
    capturer = Capturer(model, layers=asked)
    for attempt in ("first pass", "second pass"):
        capture = capturer(x)
        assert set(capture.outputs) == set(asked) and capture.layers == tuple(asked), attempt
        # inputs only for conv / pool / activation / dropout / linear modules
        assert set(capture.inputs) == {"layer1.0.relu:2", "layer2.0.conv1", "fc"}, attempt
        for name in asked:
            assert torch.equal(capture.outputs[name], full.outputs[name]), (attempt, name)
        for name in capture.inputs:
            assert torch.equal(capture.inputs[name], full.inputs[name]), (attempt, name)
    with torch.no_grad():
        pre_relu = model.bn1(model.conv1(x))
    assert (capture.outputs["bn1"] < 0).any() and torch.equal(capture.outputs["bn1"], pre_relu)
    assert "bn1" in capturer.clone_names, "the in-place ReLU after bn1 was seen and bn1 is cloned"
    with pytest.raises(ValueError, match="no layer named 'layer9'"):
        Capturer(model, layers=["layer9"])


class _Spy(nn.Module):
    """Notes, during its forward, which modules of the model run a recording forward."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 1)
        self.wrapped = []

    def forward(self, x):
        self.wrapped.append(sorted(n for n, m in self.named_modules() if "forward" in m.__dict__))
        return self.c(self.b(self.a(x)))


def test_one_chosen_layer_touches_only_that_module():
    model = _Spy().eval()
    x = torch.randn(1, 3, 8, 8)
    capture = Capturer(model, layers=["b"])(x)
    assert model.wrapped == [["b"]]
    with torch.no_grad():
        pre = model.a(x)
    assert torch.equal(capture.inputs["b"], pre) and torch.equal(capture.outputs["b"], pre.relu())
    assert model.b.inplace is True


def test_model_is_left_as_it_was_after_close_and_between_captures(resnet18):
    model = resnet18
    own_hook = model.layer1[0].bn2.register_forward_hook(lambda module, args, out: out * 2)  # the caller's
    try:
        _check_left_as_it_was(model)
    finally:
        own_hook.remove()


def _check_left_as_it_was(model):
    before = _model_state(model)
    x = torch.randn(1, 3, 64, 64)
    with Capturer(model) as capturer:
        capture = capturer(x)
        _assert_same_state(model, before)
        capturer(x)
    _assert_same_state(model, before)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 9 and all(m.inplace for m in relus), "resnet18's ReLUs stay in-place"
    with torch.no_grad():
        block = model.layer1[0]
        doubled = block.bn2(block.conv2(capture.outputs["layer1.0.relu"]))  # runs the caller's hook
    assert torch.equal(capture.outputs["layer1.0.bn2"], doubled), "recorded what the caller's hook returned"
    with pytest.raises(RuntimeError, match="closed"):
        capturer(x)


class _Fails(nn.Module):
    def __init__(self):
        super().__init__()
        self.act, self.drop = nn.ReLU(inplace=True), nn.Dropout(0.5)

    def forward(self, x):
        self.drop(self.act(x))
        raise ValueError("broken model")


def test_model_is_restored_when_its_forward_raises():
    model = _Fails().eval()
    before = _model_state(model)
    capturer = Capturer(model, train=True)
    with pytest.raises(ValueError, match="broken model"):
        capturer(torch.randn(1, 3))
    _assert_same_state(model, before)


class _DropThenAddInPlace(nn.Module):
    """Dropout whose output a later in-place op overwrites: the capture must run twice."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.drop = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)

    def forward(self, x):
        y = self.drop(self.bn(self.conv(x)))
        y += 1
        return y.flatten(1)


def test_train_mode_capture_is_a_seeded_dropout_and_modes_are_restored():
    torch.manual_seed(3)
    model = _DropThenAddInPlace()
    model.train()
    model.bn.eval()  # mixed modes: each module gets its own back
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
    before = _model_state(model)
    x = torch.randn(2, 3, 9, 9)
    capturer = Capturer(model, train=True)
    torch.manual_seed(7)
    capture = capturer(x)
    assert "drop" in capturer.clone_names, "the in-place add was detected: a second pass ran"
    _assert_same_state(model, before)  # modes, running statistics, num_batches_tracked
    train_bn = nn.BatchNorm2d(4).train()
    train_bn.load_state_dict(model.bn.state_dict())
    with torch.no_grad():
        normed = train_bn(model.conv(x))  # batch statistics, as in training mode
        torch.manual_seed(7)
        expected = F.dropout(normed, 0.5, training=True)
    assert capture.train and torch.equal(capture.inputs["drop"], normed)
    assert torch.equal(capture.outputs["drop"], expected), "same draws as F.dropout under the same seed"
    assert (expected == 0).any() and torch.allclose(expected[expected != 0], 2 * normed[expected != 0])
    assert torch.equal(capture.logits, (expected + 1).flatten(1))
    eval_capture = Capturer(model)(x)
    assert torch.equal(eval_capture.outputs["drop"], model.bn.eval()(model.conv(x)).detach())
    _assert_same_state(model, before)


def test_cache_keys_layers_and_mode_and_reuses_a_full_capture(resnet18):
    model = resnet18
    x = torch.randn(2, 3, 32, 32)
    cache = ActivationCache(max_items=4)
    full = cache.get(model, "pair", lambda: x)
    part = cache.get(model, "pair", lambda: x, layers=["layer1.0.relu:2"])
    assert part is full and cache.computed == 1, "every layer was captured already"
    only = cache.get(model, "other", lambda: x, layers=["layer1.0.relu:2"])
    assert set(only.outputs) == {"layer1.0.relu:2"} and cache.computed == 2
    torch.testing.assert_close(only.outputs["layer1.0.relu:2"], full.outputs["layer1.0.relu:2"])
    trained = cache.get(model, "pair", lambda: x, train=True)
    assert trained is not full and trained.train and cache.computed == 3
    assert cache.get(model, "pair", lambda: x, train=True) is trained
    cache.clear()
    assert not any(m._forward_hooks or "forward" in m.__dict__ for m in model.modules())


@pytest.mark.filterwarnings("ignore:`torch.jit.trace.*deprecated:FutureWarning")
def test_torchscript_layers_are_refused_in_one_line_and_logits_still_come():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten()).eval()
    scripted = torch.jit.trace(model, torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="TorchScript"):
        Capturer(scripted)
    x = torch.randn(2, 3, 5, 5)
    capture = Capturer(scripted, layers=())(x)
    assert capture.outputs == {} and torch.equal(capture.logits, model(x).detach())
