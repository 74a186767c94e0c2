"""convviz.core.geometry.conv_probe: the recomputed dot product equals the model's own output."""
import numpy as np
import pytest
import torch
from torch import nn

from convviz.core.geometry.conv_probe import conv_layer_data, probe, probe_module

CASES = {
    "plain": dict(in_channels=3, out_channels=4, kernel_size=3),
    "strided_padded_dilated": dict(in_channels=3, out_channels=5, kernel_size=(3, 5), stride=(2, 3),
                                   padding=(2, 1), dilation=(2, 1)),
    "grouped": dict(in_channels=6, out_channels=9, kernel_size=3, padding=1, groups=3),
    "depthwise": dict(in_channels=8, out_channels=8, kernel_size=5, stride=2, padding=2, groups=8, bias=False),
    "same_even": dict(in_channels=2, out_channels=3, kernel_size=4, padding="same"),
    "valid": dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid"),
    "reflect": dict(in_channels=2, out_channels=2, kernel_size=3, padding=2, padding_mode="reflect"),
    "replicate": dict(in_channels=2, out_channels=2, kernel_size=3, padding=1, padding_mode="replicate"),
    "circular": dict(in_channels=2, out_channels=2, kernel_size=3, padding=2, padding_mode="circular"),
}


def _positions(out):
    h, w = out.shape[-2:]
    return {(0, 0), (h - 1, w - 1), (h // 2, w // 3), (0, w - 1), (h - 1, 0)}


def _check(module, x, out, channels):
    data = conv_layer_data(module, "layer", x, out)
    for o in channels:
        for r, c in _positions(out):
            p = probe(data, o, r, c)
            assert abs(p.total - out[0, o, r, c].item()) < 1e-4, (o, r, c, p.total, out[0, o, r, c].item())
            assert p.error < 1e-4
            assert p.windows.shape == p.weights.shape == (len(p.in_channels), *module.kernel_size)
    return data


@pytest.mark.parametrize("name", list(CASES))
def test_probe_total_equals_torch_output(name):
    torch.manual_seed(0)
    module = nn.Conv2d(**CASES[name]).eval()
    x = torch.randn(1, module.in_channels, 11, 13)
    with torch.no_grad():
        out = module(x)
    data = _check(module, x, out, range(module.out_channels))
    assert data.output.shape == tuple(out.shape[1:])
    rows, cols = data.axes()
    assert (rows.output, cols.output) == tuple(out.shape[-2:])


def test_groups_select_the_right_input_channels():
    data = conv_layer_data(nn.Conv2d(6, 9, 3, groups=3), "g", torch.randn(1, 6, 5, 5), torch.randn(1, 9, 3, 3))
    assert list(data.input_channels_for(0)) == [0, 1]
    assert list(data.input_channels_for(4)) == [2, 3]
    assert list(data.input_channels_for(8)) == [4, 5]
    dw = conv_layer_data(nn.Conv2d(4, 4, 3, groups=4), "dw", torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3))
    assert dw.depthwise and list(dw.input_channels_for(3)) == [3]


def test_padding_taps_are_marked_and_zero():
    module = nn.Conv2d(1, 1, 3, padding=1)
    x = torch.randn(1, 1, 4, 4)
    p = probe_module(module, x, module(x), 0, 0, 0)
    assert not p.inside[0].any() and not p.inside[:, 0].any() and p.inside[1:, 1:].all()
    assert (p.windows[0][~p.inside] == 0).all()


def test_padded_channel_matches_torch_pad():
    for mode, torch_mode in (("reflect", "reflect"), ("replicate", "replicate"), ("circular", "circular")):
        module = nn.Conv2d(1, 1, 3, padding=2, padding_mode=mode)
        x = torch.randn(1, 1, 5, 6)
        data = conv_layer_data(module, "m", x, module(x))
        ref = torch.nn.functional.pad(x, (2, 2, 2, 2), mode=torch_mode)[0, 0].detach().numpy()
        np.testing.assert_allclose(data.padded_channel(0), ref)


@pytest.fixture(scope="module", params=[96, 97], ids=["even", "odd"])
def lite0_capture(request):
    """The bundled architecture's stride-2 convs (TF "SAME" by ``F.pad`` in forward: 3×3 and 5×5) and a
    stride-1 depthwise conv, with the tensors they saw on an even and an odd input."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    convs = {n: m for n, m in model.named_modules() if n == "conv_stem" or n.endswith("conv_dw")}
    convs = {n: m for n, m in convs.items() if m.stride == (2, 2) or n == "blocks.4.0.conv_dw"}
    assert {m.kernel_size for m in convs.values()} == {(3, 3), (5, 5)} and len(convs) == 6
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, (inp[0], out)))
             for n, m in convs.items()]
    with torch.no_grad():
        model(torch.randn(1, 3, request.param, request.param))
    for h in hooks:
        h.remove()
    return convs, seen


def test_probe_on_efficientnet_lite0_stem_and_depthwise(lite0_capture):
    convs, seen = lite0_capture
    for name, module in convs.items():
        x, out = seen[name]
        data = _check(module, x, out, (0, module.out_channels // 2, module.out_channels - 1))
        assert data.name == "layer"
        h = x.shape[-1]
        total = max((-(-h // module.stride[0]) - 1) * module.stride[0] + module.kernel_size[0] - h, 0)
        want = (total // 2, total - total // 2) if module.stride[0] == 2 else (2, 2)
        assert data.padding == want * 2 or data.padding == (want[0], want[1], want[0], want[1])
        if "conv_dw" in name:
            assert data.depthwise and data.groups == module.in_channels
            assert list(data.input_channels_for(5)) == [5]


def test_timm_conv2d_same_dynamic_padding_is_resolved():
    layers = pytest.importorskip("timm.layers")
    torch.manual_seed(1)
    module = layers.Conv2dSame(3, 4, 3, stride=2)
    x = torch.randn(1, 3, 10, 9)
    with torch.no_grad():
        out = module(x)
    data = _check(module, x, out, range(4))
    assert "TF 'SAME'" in data.padding_text
    assert data.padding == (0, 1, 1, 1)  # 10 rows: 0 before, 1 after; 9 columns: 1 and 1
