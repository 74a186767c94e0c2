"""The lab views on real EfficientNet-Lite0 captures (ActivationCache), against torch."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convviz.core.labs import views as labs
from convviz.core.capture.cache import ActivationCache
from convviz.core.images import load_image
from convviz.core.capture.layer_table import layer_table
from convviz.core.views.registry import ViewContext, get_view, view_kinds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def lite0():
    """The bundled model, one capture of the cat sample, and its layer table (built once)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    from convviz.core.model.loading import load_model

    model = load_model("default")
    image = load_image(os.path.join(ROOT, "resources", "samples", "cat.jpg"))
    cache = ActivationCache()
    capture = cache.get(model.module, "cat", lambda: model.preprocess.to_tensor(image.rgb))
    rows = layer_table(model.module)
    yield model, capture, {row.name: row for row in rows}, rows
    cache.clear()
    torch.set_num_threads(before)


def _ctx(lite0, name):
    model, capture, rows, _ = lite0
    module = dict(model.module.named_modules())[name.partition(":")[0]]
    return ViewContext(capture, model, name, module, rows.get(name))


def test_lab_kinds_are_registered():
    assert {"relu_lab", "pool_lab", "dropout_lab", "pointwise_lab", "first_filters"} <= set(view_kinds())


def test_relu_lab_on_fused_batchnorm_act(lite0):
    model, capture, _, _ = lite0
    lab = get_view("relu_lab")(_ctx(lite0, "bn1"), channel=3)
    bn1 = model.module.bn1
    with torch.no_grad():  # pre-activation = BN(conv_stem output), recomputed with torch
        pre = F.batch_norm(capture.outputs["conv_stem"], bn1.running_mean, bn1.running_var, bn1.weight, bn1.bias,
                           False, 0.0, bn1.eps)[0]
    out = capture.outputs["bn1"][0]
    np.testing.assert_allclose(lab.input_map, pre[3].numpy(), atol=1e-5)
    np.testing.assert_array_equal(lab.output_map, out[3].numpy())
    assert lab.function == "ReLU6" and lab.max_abs_error < 1e-5 and "BN(x)" in lab.source
    assert lab.zero_share == pytest.approx(float((F.relu6(pre) == 0).float().mean()), abs=1e-4)
    assert lab.zero_share == pytest.approx(float((out == 0).float().mean()), abs=0)
    assert 0.05 < lab.zero_share < 0.95 and lab.shape == (32, 112, 112)
    act = get_view("relu_lab")(_ctx(lite0, "bn1.act"), channel=3)
    assert act.zero_share == lab.zero_share and act.function == "ReLU6"
    with pytest.raises(ValueError, match="not an activation"):
        get_view("relu_lab")(_ctx(lite0, "blocks.0.0.bn2"))  # its act is Identity


def test_pool_lab_on_real_map(lite0):
    _, capture, _, _ = lite0
    lab = get_view("pool_lab")(_ctx(lite0, "bn1"), channel=5, kernel=2, stride=2)
    x = capture.outputs["bn1"]
    np.testing.assert_allclose(lab.max_map, F.max_pool2d(x, 2, 2)[0, 5].numpy())
    np.testing.assert_allclose(lab.avg_map, F.avg_pool2d(x, 2, 2)[0, 5].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lab.l2_map, F.lp_pool2d(x, 2, 2, 2)[0, 5].numpy(), rtol=1e-5, atol=1e-6)
    assert lab.out_shape == (32, 56, 56) and lab.source == "output"
    assert lab.reduction.startswith("2×2, stride 2: 12544 → 3136 values per channel (32 channels: 401408 → "
                                    "100352), 75% fewer activations")


def test_pool_lab_uses_a_pooling_layers_input_and_settings():
    from convviz.core.model.loading import build_architecture

    module = build_architecture("resnet18", require_weights=False)[0]
    cache = ActivationCache()
    capture = cache.get(module, "zeros", lambda: torch.randn(1, 3, 64, 64))
    try:
        ctx = ViewContext(capture, None, "maxpool", module.maxpool)
        lab = get_view("pool_lab")(ctx, channel=2)
        assert (lab.kernel, lab.stride, lab.padding, lab.source) == (3, 2, 1, "input")
        np.testing.assert_array_equal(lab.max_map, capture.outputs["maxpool"][0, 2].numpy())
        assert labs.first_layer_for_lab(module.named_modules(), "pool") == "maxpool"
    finally:
        cache.clear()


def test_dropout_lab_view(lite0):
    _, capture, _, _ = lite0
    ctx = _ctx(lite0, "conv_head")
    train = get_view("dropout_lab")(ctx, p=0.2, seed=3, train=True, channel=10)
    torch.manual_seed(3)
    ref = F.dropout(capture.outputs["conv_head"][0], 0.2, training=True)
    np.testing.assert_array_equal(train.output_map, ref[10].numpy())
    assert train.mean_after == pytest.approx(float(ref.mean()), rel=1e-5)
    evaluated = get_view("dropout_lab")(ctx, p=0.2, train=False)
    assert evaluated.identity and "nothing at inference" in evaluated.text


def test_pointwise_lab_view(lite0):
    _, capture, _, _ = lite0
    lab = get_view("pointwise_lab")(_ctx(lite0, "blocks.1.0.conv_pwl"), channel=7, top=4)
    assert lab.max_abs_error < 1e-4 and len(lab.top_channels) == 4
    np.testing.assert_allclose(lab.weighted_sum, capture.outputs["blocks.1.0.conv_pwl"][0, 7].numpy(), atol=1e-4)
    assert lab.shape_text == "56×56×96 → 56×56×24"
    with pytest.raises(ValueError, match="not a 1×1"):
        get_view("pointwise_lab")(_ctx(lite0, "conv_stem"))


def test_lab_for_and_first_layer(lite0):
    model, _, rows, row_list = lite0
    named = list(model.module.named_modules())
    modules = dict(named)
    assert labs.lab_for(rows["conv_stem"]) == ("pool", "dropout")
    assert labs.lab_for(rows["bn1.act"]) == ("relu", "pool", "dropout")
    assert "relu" in labs.lab_for(rows["bn1"], modules["bn1"])
    assert "relu" not in labs.lab_for(rows["blocks.0.0.bn2"], modules["blocks.0.0.bn2"])
    assert "pointwise" in labs.lab_for(rows["blocks.0.0.conv_pw"]) and "pointwise" in labs.lab_for(
        modules["blocks.0.0.conv_pw"])
    assert labs.lab_for(rows["classifier"]) == ("dropout",)
    assert labs.first_layer_for_lab(named, "relu") == "bn1"
    assert labs.first_layer_for_lab(row_list, "relu") == "bn1.act"
    assert labs.first_layer_for_lab(row_list, "pointwise") == "blocks.0.0.conv_pw"
    assert labs.first_layer_for_lab(row_list, "pool") == "conv_stem"  # Lite0 has no MaxPool: any map
    assert labs.first_layer_for_lab(row_list, "dropout") == "conv_stem"
    with pytest.raises(ValueError, match="unknown lab"):
        labs.first_layer_for_lab(row_list, "gelu")




def test_rows_and_modules_get_the_same_labs():
    """One rule (core.lab_names.labs_for) for a LayerRow and for the module alone: a padded 1×1 conv is
    no pointwise lab, a 'same' or unpadded one is; a fused BN + activation offers the ReLU lab only when
    its act is an activation (the rows tell it through the act's own row)."""
    from timm.layers import BatchNormAct2d
    from torch import nn

    from convviz.core.labs.names import act_type_of, row_labs
    from convviz.core.capture.layer_table import layer_table

    net = nn.Sequential(nn.Conv2d(3, 4, 1, padding=1), nn.Conv2d(4, 4, 1, padding="same"), nn.Conv2d(4, 4, 1),
                        BatchNormAct2d(4, act_layer=nn.ReLU), BatchNormAct2d(4, apply_act=False), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Dropout(0.1)).eval()
    rows = layer_table(net, (3, 8, 8))
    modules = dict(net.named_modules())
    got = {}
    for row in rows:
        got[row.name] = labs.lab_for(row, modules[row.name])
        alone = labs.lab_for(modules[row.name])  # no shapes: pool and dropout only for their own layer types
        assert [lab for lab in got[row.name] if lab in ("relu", "pointwise")] == [
            lab for lab in alone if lab in ("relu", "pointwise")], row.name
        assert set(alone) <= set(got[row.name])
        assert got[row.name] == row_labs(row, act_type=act_type_of(rows, row.name)), row.name
    assert "pointwise" not in got["0"] and "pointwise" in got["1"] and "pointwise" in got["2"]
    assert "relu" in got["3"] and "relu" not in got["4"]
