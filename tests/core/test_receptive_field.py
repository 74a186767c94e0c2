"""Layer-table receptive fields against the gradient-measured support of real units."""
import math

import pytest
import timm
import torch
import torchvision
from torch import nn

from convviz.core.capture.layer_table import layer_table


def _linearised(model: nn.Module) -> nn.Module:
    """Same geometry, but every path positive: ReLUs out, max-pool → avg-pool, weights > 0.

    Then the gradient of a unit w.r.t. the input is > 0 exactly on its receptive field.
    """
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish)):
                setattr(module, child_name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(module, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.01)
    return model.eval()


def _measured_support(model, name, size, where="centre"):
    """Rows/cols of the input that one unit of ``name`` (centre, first or last) depends on (by gradient)."""
    module = dict(model.named_modules())[name]
    store = {}
    handle = module.register_forward_hook(lambda m, a, out: store.update(out=out))
    x = torch.rand(1, 3, size, size) + 0.5
    x.requires_grad_(True)
    model(x)
    handle.remove()
    out = store["out"]
    i, j = {"centre": (out.shape[-2] // 2, out.shape[-1] // 2), "first": (0, 0),
            "last": (out.shape[-2] - 1, out.shape[-1] - 1)}[where]
    (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
    rows = torch.nonzero(grad.abs().sum(dim=(0, 1, 3)) > 0).flatten()
    cols = torch.nonzero(grad.abs().sum(dim=(0, 1, 2)) > 0).flatten()
    return (i, j), (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))


def _expected(row, index, axis, size):
    centre = row.start[axis] + index * row.jump[axis]
    lo, hi = centre - (row.rf[axis] - 1) / 2, centre + (row.rf[axis] - 1) / 2
    return max(0, math.ceil(lo)), min(size - 1, math.floor(hi))


MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False),
    "efficientnet_lite0": lambda: timm.create_model("efficientnet_lite0"),
    "vgg11": lambda: torchvision.models.vgg11(),
    "tf_efficientnet_lite0 (dynamic 'same' padding via F.pad)": lambda: timm.create_model("tf_efficientnet_lite0"),
}


@pytest.mark.parametrize("arch", MODELS)
def test_receptive_field_matches_gradient_support(arch):
    size = 160
    model = _linearised(MODELS[arch]())
    rows = {r.name: r for r in layer_table(model, (3, size, size))}
    spatial = [r for r in rows.values() if r.rf is not None and ":" not in r.name and r.out_shape[-1] > 1]
    # every conv / pool plus every multi-branch block output (residual adds, Inception cats)
    checked = [r for r in spatial if r.kernel or r.type in ("BasicBlock", "Inception", "InvertedResidual", "Sequential")]
    assert len(checked) >= 10
    for row in checked:
        (i, j), rows_seen, cols_seen = _measured_support(model, row.name, size)
        assert rows_seen == _expected(row, i, 0, size), (arch, row.name, row.rf, row.start)
        assert cols_seen == _expected(row, j, 1, size), (arch, row.name, row.rf, row.start)


@pytest.mark.parametrize("size", [224, 97])
def test_tf_same_fields_hold_at_the_borders(size):
    """TF "SAME" pads 0 before / 1 after (3×3 s2) or 1 / 2 (5×5 s2) on even inputs: the field's start
    shifts; the first and the last unit of every stride-2 layer and stage end are checked."""
    model = _linearised(timm.create_model("tf_efficientnet_lite0"))
    table = {r.name: r for r in layer_table(model, (3, size, size))}
    names = [n for n, r in table.items() if r.stride == (2, 2)] + [f"blocks.{i}" for i in range(6)]
    assert len(names) >= 10 and table["blocks.2.0.conv_dw"].padding == ((1, 2, 1, 2) if size == 224 else (2, 2))
    for name in names:
        row = table[name]
        for where in ("first", "last"):
            (i, j), rows_seen, cols_seen = _measured_support(model, name, size, where)
            assert rows_seen == _expected(row, i, 0, size), (name, where, row.rf, row.start)
            assert cols_seen == _expected(row, j, 1, size), (name, where, row.rf, row.start)


def test_layer_shapes_are_torch_shapes():
    model = torchvision.models.resnet18().eval()
    shapes = {}

    def record(name):
        def hook(module, args, out):
            shapes.setdefault(name, tuple(out.shape[1:]))
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    model(torch.zeros(1, 3, 200, 150))
    for h in hooks:
        h.remove()
    table = {r.name: r.out_shape for r in layer_table(model, (3, 200, 150))}
    assert {n: s for n, s in table.items() if ":" not in n} == shapes
    assert table["layer1.0.relu:2"] == table["layer1.0.relu"]


def test_first_layers_by_hand():
    rows = {r.name: r for r in layer_table(torchvision.models.resnet18())}
    assert rows["conv1"].rf == (7, 7) and rows["conv1"].jump == (2, 2)
    assert rows["maxpool"].rf == (11, 11) and rows["maxpool"].jump == (4, 4)
    assert rows["layer4.1.conv2"].jump == (32, 32)
    assert rows["fc"].rf is None and rows["fc"].out_shape == (1000,)
