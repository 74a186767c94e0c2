"""The layer tree's order is the order torch starts the calls (forward pre-hooks are the oracle)."""
import pytest
import torch
import torchvision
from torch import nn

from convviz.core.capture.activations import call_name
from convviz.core.capture.layer_table import layer_table
from convviz.core.capture.layer_tree import DROPOUT_NOTE, build_tree, first_layer_for, is_dropout, short_name


def start_order(model, x):
    """Record names in the order their calls start (a forward pre-hook on every module)."""
    names = {m: n for n, m in model.named_modules() if n}
    calls, order = {}, []

    def pre(module, _args):
        calls[module] = calls.get(module, 0) + 1
        order.append(call_name(names[module], calls[module]))

    handles = [m.register_forward_pre_hook(pre) for m in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return order


class OutOfOrder(nn.Module):
    """Children defined in one order and called in another; a reused ReLU; a dropout."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 3)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.act(self.body(x))
        x = self.act(x)
        return self.head(self.drop(self.pool(x).flatten(1)))




@pytest.mark.parametrize("arch", ["lite0", "resnet18", "custom"])
def test_tree_order_is_torchs_call_order(arch):
    torch.manual_seed(0)
    if arch == "lite0":
        import timm

        model = timm.create_model("efficientnet_lite0").eval()
    elif arch == "resnet18":
        model = torchvision.models.resnet18().eval()
    else:
        model = OutOfOrder().eval()
    size = 64
    rows = layer_table(model, (3, size, size))
    tree = build_tree(rows)
    assert sorted(tree.names()) == sorted(r.name for r in rows)
    assert tree.names() == start_order(model, torch.zeros(1, 3, size, size))
    for node in tree.order:  # each child sits under its module-path parent
        if node.parent is not None:
            assert node.name.split(":")[0].startswith(node.parent.name + ".")
            assert node.depth == node.parent.depth + 1


def test_lite0_details():
    import timm

    model = timm.create_model("efficientnet_lite0").eval()
    tree = build_tree(layer_table(model, (3, 64, 64)))
    names = tree.names()
    assert names.index("bn1") < names.index("bn1.act") < names.index("blocks")
    assert [c.name for c in tree.node("bn1").children] == ["bn1.drop", "bn1.act"]
    assert [n.name for n in tree.roots] == ["conv_stem", "bn1", "blocks", "conv_head", "bn2", "global_pool",
                                            "classifier"]
    assert tree.node("blocks.1.0.aa").pass_through and not tree.node("blocks.1.0.conv_dw").pass_through
    assert tree.step("conv_stem", 1) == "bn1" and tree.step("bn1", 1, skip_pass_through=True) == "bn1.act"
    assert tree.step("bn1", 1) == "bn1.drop" and tree.step("conv_stem", -1) is None
    assert short_name("blocks.1.0.bn1.act") == "act" and short_name("layer1.0.relu:2") == "relu:2"


def test_reused_module_and_dropout():
    model = OutOfOrder().eval()
    rows = layer_table(model, (3, 8, 8))
    tree = build_tree(rows)
    assert tree.names().index("act") < tree.names().index("act:2")
    drop = tree.node("drop")
    assert drop.pass_through and is_dropout(drop.row) and "inference" in DROPOUT_NOTE
    x = torch.randn(1, 4)
    assert torch.equal(model.drop(x), x)  # what the note claims, in eval mode
    assert first_layer_for(rows, lambda r: r.type == "ReLU") == "act"
    assert first_layer_for(rows, lambda r: r.type == "LSTM") is None
