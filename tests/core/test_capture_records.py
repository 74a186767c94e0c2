"""What a full capture derives instead of holding: exact values, the fall-backs, and the records mapping."""
import pytest
import torch
import torchvision
from torch import nn

from convviz.core.capture.cache import ActivationCache
from convviz.core.capture.activations import Capturer
from convviz.core.capture.records import Derived, Records


def _lite0():
    import timm

    torch.manual_seed(0)
    return _with_real_statistics(timm.create_model("efficientnet_lite0").eval())


def _with_real_statistics(model):
    """Batch-norm statistics and affine parameters that are not the identity (fresh ones are)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.rand(module.num_features, generator=generator) * 2 - 1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(module.num_features, generator=generator) * 2 - 1)
    return model


def _reference(model, x):
    """Each module's input and output, cloned as they happen (the real in-place model, no capture)."""
    names = {m: n for n, m in model.named_modules() if n}
    outputs, inputs = {}, {}

    def after(module, args, out):
        if isinstance(out, torch.Tensor):
            outputs.setdefault(names[module], out.detach().clone())

    def before(module, args):
        if args and isinstance(args[0], torch.Tensor):
            inputs.setdefault(names[module], args[0].detach().clone())

    handles = [m.register_forward_hook(after) for m in names] + [m.register_forward_pre_hook(before) for m in names]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits, outputs, inputs


def _held_bytes(capture) -> int:
    held = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
            for records in (capture.outputs, capture.inputs) for t in records._items.values()
            if isinstance(t, torch.Tensor)}
    return sum(held.values())


@pytest.mark.parametrize("arch", ["lite0", "resnet18"])
def test_derived_records_are_bit_for_bit_the_pass_values(arch):
    model = _lite0() if arch == "lite0" else _with_real_statistics(torchvision.models.resnet18().eval())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    logits, outputs, inputs = _reference(model, x)
    capturer = Capturer(model)
    learning = capturer(x)
    derived = capturer(x)
    assert not any(type(v) is Derived for v in learning.outputs._items.values()), "the learning pass holds all"
    kinds = {type(v) for v in derived.outputs._items.values()}
    assert Derived in kinds and torch.Tensor in kinds
    assert _held_bytes(derived) < 0.6 * _held_bytes(learning)
    assert torch.equal(derived.logits, logits)
    assert set(outputs) <= set(derived.outputs)
    for name, expected in outputs.items():
        assert torch.equal(derived.outputs[name], expected), name
    for name in derived.inputs:
        if ":" not in name:  # the reference keeps a module's first call
            assert torch.equal(derived.inputs[name], inputs[name]), name
    if arch == "lite0":  # the BatchNormAct2d's pre-activation and its in-place ReLU6, both derived
        assert type(derived.outputs._items["bn1.drop"]) is Derived
        assert derived.inputs["bn1.act"] is derived.outputs["bn1.drop"]
        assert (derived.outputs["bn1.drop"] < 0).any() and derived.outputs["bn1"].min() >= 0
        assert derived.outputs["bn1"] is derived.outputs["bn1.act"]
        assert model.bn1.act.inplace is True


def test_a_capture_of_the_same_model_again_derives_the_same_values_as_it_holds():
    model = _lite0()
    x = torch.randn(1, 3, 64, 64)
    cache = ActivationCache(max_items=2)
    cache.get(model, "learn", lambda: x)
    derived = cache.get(model, "again", lambda: x)
    held = Capturer(model, train=False)  # a fresh capturer: its first pass holds everything
    first = held(x)
    for name in first.outputs:
        assert torch.equal(derived.outputs[name], first.outputs[name]), name


def test_statistics_changed_after_the_capture_are_refused():
    model = _lite0()
    capturer = Capturer(model)
    x = torch.randn(1, 3, 32, 32)
    capturer(x)
    capture = capturer(x)
    with torch.no_grad():
        model.bn1.running_mean.add_(1.0)
    with pytest.raises(RuntimeError, match="changed after this capture"):
        capture.outputs["bn1.drop"]
    assert isinstance(capture.outputs["conv_stem"], torch.Tensor), "held outputs are still there"


def test_a_parameter_replaced_between_captures_is_the_one_used():
    model = _lite0()
    x = torch.randn(1, 3, 32, 32)
    capturer = Capturer(model)
    capturer(x)
    capturer(x)
    model.bn1.weight = nn.Parameter(model.bn1.weight.detach() * 3)
    model.bn1.eps = 0.1
    _, outputs, _ = _reference(model, x)
    for _ in range(2):  # the pass that notices holds; the next derives with the renewed plan
        capture = capturer(x)
        for name in ("bn1", "bn1.drop", "blocks.0.0.conv_dw"):
            assert torch.equal(capture.outputs[name], outputs[name]), name
    assert type(capture.outputs._items["bn1.drop"]) is Derived


def test_a_hook_of_the_callers_on_a_fused_norm_child_makes_the_pass_hold_its_records():
    model = _lite0()
    x = torch.randn(1, 3, 32, 32)
    handle = model.blocks[1][0].bn1.act.register_forward_hook(lambda module, args, out: out * 0.5)
    try:
        _, outputs, _ = _reference(model, x)
        capturer = Capturer(model)
        capturer(x)
        capture = capturer(x)
        for name, expected in outputs.items():
            assert torch.equal(capture.outputs[name], expected), name
        assert type(capture.outputs._items["blocks.1.0.bn1.act"]) is not Derived
    finally:
        handle.remove()


class _SharedNorm(nn.Module):
    """One BatchNorm2d called twice per pass: its records are held, call by call."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        return self.bn(y * 2).flatten(1)


def test_a_batch_norm_called_twice_is_recorded_per_call():
    model = _with_real_statistics(_SharedNorm().eval())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        first = model.bn(model.conv(x))
        second = model.bn(first.relu() * 2)
    capturer = Capturer(model)
    for _ in range(3):
        capture = capturer(x)
        assert torch.equal(capture.outputs["bn"], first) and torch.equal(capture.outputs["bn:2"], second)
        assert torch.equal(capture.outputs["act"], first.relu())


class _ChangedAfterActivation(nn.Module):
    """The activation's output is changed in place before the next layer reads it."""

    def __init__(self):
        super().__init__()
        self.act, self.conv = nn.ReLU(), nn.Conv2d(3, 2, 1)

    def forward(self, x):
        y = self.act(x)
        y.mul_(3)
        return self.conv(y)


def test_an_input_changed_in_place_after_a_derived_output_is_what_the_layer_read():
    model = _ChangedAfterActivation().eval()
    x = torch.randn(1, 3, 5, 5)
    capturer = Capturer(model)
    for _ in range(3):
        capture = capturer(x)
        assert torch.equal(capture.outputs["act"], x.relu()), "what the activation returned"
        assert torch.equal(capture.inputs["conv"], x.relu() * 3), "what the convolution read"


def test_train_mode_and_chosen_layers_hold_every_record():
    model = _lite0()
    x = torch.randn(2, 3, 32, 32)
    for capturer in (Capturer(model, train=True), Capturer(model, layers=["bn1", "bn1.drop", "conv_stem"])):
        capturer(x)
        capture = capturer(x)
        assert not any(type(v) is Derived for v in capture.outputs._items.values())


def test_records_read_like_a_dict():
    held = torch.arange(4.0) - 2
    derived = Derived(torch.relu, held)
    records = Records({"a": held, "b": derived, "c": derived})
    assert list(records) == ["a", "b", "c"] and len(records) == 3 and "b" in records and "z" not in records
    assert records["b"] is records["c"] and torch.equal(records["b"], held.relu())
    assert records.get("z") is None and set(records.keys()) == {"a", "b", "c"}
    assert dict(records) == {"a": held, "b": records["b"], "c": records["b"]}
    assert Records() == {} and "Records(['a', 'b', 'c'])" == repr(records)
    with pytest.raises(TypeError):
        records["a"] = held
