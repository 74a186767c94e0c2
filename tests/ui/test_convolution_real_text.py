"""The real-layer view's sentences on the bundled architecture (timm's tf_efficientnet_lite0, whose
stride-2 convs pad TF "SAME"): the padding line says the real, uneven split; the field line never
claims more real pixels than the input has, and its count is the gradient-measured support."""
import re

import pytest
import torch
from torch import nn

from convviz.core.geometry.conv_probe import conv_layer_data
from convviz.core.capture.layer_table import layer_table
from convviz.ui.convolution.real_text import field_line, layer_summary, padding_line

timm = pytest.importorskip("timm")
SIZE = 224


def _linearised(model: nn.Module) -> nn.Module:
    """Same geometry, every path positive (no activations, weights > 0): a unit's input gradient is
    non-zero exactly on the real pixels it sees."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6, nn.SiLU)):
                setattr(module, child_name, nn.Identity())
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.01)
    return model.eval()


@pytest.fixture(scope="module")
def lite0():
    """(model, layer table rows, {name: ConvLayerData}, input) for the stem, a 5×5 stride-2 depthwise
    conv and the last conv."""
    torch.manual_seed(0)
    model = _linearised(timm.create_model("tf_efficientnet_lite0", pretrained=False))
    rows = {r.name: r for r in layer_table(model, (3, SIZE, SIZE))}
    names = ("conv_stem", "blocks.2.0.conv_dw", "conv_head")
    modules = dict(model.named_modules())
    seen = {}
    hooks = [modules[n].register_forward_hook(lambda m, a, out, n=n: seen.__setitem__(n, (a[0], out)))
             for n in names]
    x = torch.rand(1, 3, SIZE, SIZE) + 0.5
    x.requires_grad_(True)
    model(x)
    for h in hooks:
        h.remove()
    data = {n: conv_layer_data(modules[n], n, seen[n][0].detach(), seen[n][1].detach(), rf=rows[n].rf,
                               jump=rows[n].jump, start=rows[n].start, image_hw=(SIZE, SIZE)) for n in names}
    return seen, data, x


def test_padding_line_says_the_real_uneven_split(lite0):
    _, data, _ = lite0
    assert data["conv_stem"].padding == (0, 1, 0, 1)
    assert "TF SAME: 0 before, 1 after" in padding_line(data["conv_stem"])
    assert data["blocks.2.0.conv_dw"].padding == (1, 2, 1, 2)
    assert "TF SAME: 1 before, 2 after" in padding_line(data["blocks.2.0.conv_dw"])
    line = padding_line(data["conv_head"])  # 1×1: no padding, nothing uneven said
    assert "before" not in line and "uneven" not in line
    summary = layer_summary(data["conv_stem"])
    assert "rows: (224 + 0 + 1 − 3)/2 + 1 = 112<br>" in summary and "floor" not in summary


def test_uneven_padding_of_a_plain_conv_same_is_said():
    conv = nn.Conv2d(1, 1, 4, padding="same")
    x = torch.rand(1, 1, 9, 9)
    with torch.no_grad():
        data = conv_layer_data(conv, "c", x, conv(x))
    assert data.padding == (1, 2, 1, 2) and "TF SAME: 1 before, 2 after" in padding_line(data)


def test_field_line_counts_real_pixels_as_the_gradient_does(lite0):
    seen, data, x = lite0
    for name in ("conv_stem", "conv_head"):
        d = data[name]
        line = field_line(d)
        fh, fw = d.rf
        assert f"theoretical receptive field of one output unit: {fh:g}×{fw:g} image pixels" in line
        claimed = [tuple(int(v) for v in m) for m in re.findall(r"(\d+)×(\d+) real pixels", line)]
        assert all(h <= SIZE and w <= SIZE for h, w in claimed), line
        out = seen[name][1]
        i, j = out.shape[-2] // 2, out.shape[-1] // 2  # a centre unit sees the most
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
        rows = torch.nonzero(grad.abs().sum(dim=(0, 1, 3)) > 0).flatten()
        cols = torch.nonzero(grad.abs().sum(dim=(0, 1, 2)) > 0).flatten()
        measured = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
        if fh > SIZE:
            assert claimed == [(SIZE, SIZE)] and measured == (SIZE, SIZE) and "larger than" in line, line
        elif "every unit sees all of it" in line:
            assert measured == (fh, fw), line
        if name == "conv_head":
            assert fh > SIZE  # the case that once read '851×851 image pixels' on a 224×224 input
