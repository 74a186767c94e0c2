"""Labs on small tensors, against torch's own functional ops and modules."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convviz.core.labs.activation import ACTIVATIONS, activation_lab, batchnorm_act_preactivation
from convviz.core.labs.dropout import dropout_lab
from convviz.core.labs.pointwise import is_pointwise, pointwise_lab
from convviz.core.labs.pool import pool_lab, reduction_text




TORCH_FN = {"ReLU": F.relu, "ReLU6": F.relu6, "SiLU": F.silu, "Hardswish": F.hardswish}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_lab_matches_torch(name):
    torch.manual_seed(1)
    pre = torch.randn(4, 9, 11) * 4
    out = getattr(nn, name)()(pre)
    lab = activation_lab("x", name, pre, out, channel=2, bins=20)
    fn = TORCH_FN[name]
    assert lab.zero_share == pytest.approx(float((fn(pre) == 0).float().mean()), abs=0)
    assert lab.channel_zero_share == pytest.approx(float((fn(pre[2]) == 0).float().mean()), abs=0)
    np.testing.assert_array_equal(lab.output_map, fn(pre)[2].numpy())
    np.testing.assert_array_equal(lab.input_map, pre[2].numpy())
    np.testing.assert_allclose(lab.curve_y, fn(torch.from_numpy(lab.curve_x)).numpy())
    assert lab.curve_x[0] == pytest.approx(float(pre.min())) and lab.curve_x[-1] == pytest.approx(float(pre.max()))
    assert lab.input_counts.sum() == lab.output_counts.sum() == pre.numel()
    assert len(lab.bin_edges) == 21 and lab.max_abs_error == 0.0
    assert lab.negative_share == pytest.approx(float((pre < 0).float().mean()))
    if name in ("ReLU", "ReLU6"):
        assert lab.zero_share == pytest.approx(lab.negative_share, abs=1e-6)  # every negative became 0
    if name == "ReLU6":
        assert lab.capped_share == float((pre >= 6).float().mean()) > 0 and "capped at 6" in lab.summary
    if name == "SiLU":
        assert lab.zero_share == 0.0 and (lab.output_map < 0).any()  # small negatives survive
    if name == "Hardswish":
        assert lab.zero_share == pytest.approx(float((pre <= -3).float().mean()))
    assert name in lab.formula and "\n" not in lab.differences


def test_activation_lab_refuses_bad_input():
    x = torch.randn(2, 3, 3)
    with pytest.raises(ValueError, match="channel 5"):
        activation_lab("x", "ReLU", x, F.relu(x), channel=5)
    with pytest.raises(ValueError, match="not one of"):
        activation_lab("x", "GELU", x, F.gelu(x))


def test_batchnorm_act_preactivation_is_bn_without_act():
    timm_layers = pytest.importorskip("timm.layers")
    torch.manual_seed(0)
    module = timm_layers.BatchNormAct2d(5, act_layer=nn.ReLU6).eval()
    module.running_mean.uniform_(-1, 1)
    module.running_var.uniform_(0.5, 2)
    module.weight.data.uniform_(0.5, 2)
    module.bias.data.uniform_(-1, 1)
    x = torch.randn(1, 5, 6, 6) * 3
    pre = batchnorm_act_preactivation(module, x)
    with torch.no_grad():
        ref = nn.functional.batch_norm(x, module.running_mean, module.running_var, module.weight, module.bias)
        torch.testing.assert_close(pre, ref)
        torch.testing.assert_close(F.relu6(pre), module(x))


def test_dropout_train_uses_torchs_mask_and_scale():
    torch.manual_seed(0)
    x = torch.rand(8, 20, 20) + 0.5
    for p in (0.1, 0.5, 0.8):
        lab = dropout_lab("d", x, p=p, seed=7, train=True, channel=3)
        torch.manual_seed(7)
        ref = F.dropout(x, p, training=True)
        np.testing.assert_array_equal(lab.output_map, ref[3].numpy())
        np.testing.assert_array_equal(lab.mask_map, (ref[3] != 0).numpy())
        assert lab.kept_share == pytest.approx(float((ref != 0).float().mean()))
        assert abs(lab.kept_share - (1 - p)) < 0.05  # 3200 draws
        survivors = lab.output_map[lab.mask_map] / lab.input_map[lab.mask_map]
        np.testing.assert_allclose(survivors, 1 / (1 - p), rtol=1e-6)
        assert lab.mean_after == pytest.approx(float(ref.mean()), rel=1e-6)
        assert abs(lab.mean_after - lab.mean_before) / lab.mean_before < 0.1  # mean kept in expectation
        assert not lab.identity and f"{1 / (1 - p):.4g}" in lab.text
    other = dropout_lab("d", x, p=0.5, seed=8, train=True)
    assert not np.array_equal(other.mask_map, dropout_lab("d", x, p=0.5, seed=7, train=True).mask_map)


def test_dropout_eval_is_identity():
    x = torch.randn(3, 5, 5)
    lab = dropout_lab("d", x, p=0.5, seed=0, train=False, channel=1)
    np.testing.assert_array_equal(lab.output_map, F.dropout(x, 0.5, training=False)[1].numpy())
    assert lab.identity and lab.mask_map.all() and lab.kept_share == 1.0 and lab.scale == 1.0
    assert "nothing at inference" in lab.text
    vec = dropout_lab("d", torch.randn(30), p=0.3, seed=1)
    assert vec.output_map.shape == (1, 30)
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout_lab("d", x, p=1.5)


def test_pointwise_lab_equals_real_1x1_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 7, 1, stride=2).eval()
    x = torch.randn(1, 12, 9, 10)
    with torch.no_grad():
        y = conv(x)
    lab = pointwise_lab("pw", conv, x, y, out_channel=4, top=3)
    assert lab.max_abs_error < 1e-4
    np.testing.assert_allclose(lab.weighted_sum, y[0, 4].numpy(), atol=1e-4)
    np.testing.assert_allclose(lab.top_maps.sum(0) + lab.rest_map + lab.bias_value, y[0, 4].numpy(), atol=1e-4)
    # as a matrix product at every pixel
    flat = torch.einsum("oc,chw->ohw", conv.weight[:, :, 0, 0], x[0, :, ::2, ::2]) + conv.bias[:, None, None]
    torch.testing.assert_close(flat, y[0], atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(lab.weight, conv.weight[:, :, 0, 0].detach().numpy())
    strength = (conv.weight[4, :, 0, 0, None, None] * x[0, :, ::2, ::2]).abs().mean(dim=(1, 2))
    assert lab.top_channels == tuple(int(i) for i in torch.argsort(strength, descending=True)[:3])
    assert lab.top_weights[0] == pytest.approx(float(conv.weight.detach()[4, lab.top_channels[0], 0, 0]))
    assert lab.shape_text == "9×10×12 → 5×5×7" and lab.params_text.startswith("7·(12 + 1) = 91")
    assert not is_pointwise(nn.Conv2d(4, 4, 3)) and not is_pointwise(nn.Conv2d(4, 4, 1, groups=2))
    with pytest.raises(ValueError, match="not a 1×1"):
        pointwise_lab("c", nn.Conv2d(4, 4, 3), torch.randn(1, 4, 5, 5), torch.randn(1, 4, 3, 3))


def test_pointwise_shape_bookkeeping_like_the_article():
    conv = nn.Conv2d(192, 64, 1).eval()
    x = torch.randn(1, 192, 56, 56)
    with torch.no_grad():
        lab = pointwise_lab("pw", conv, x, conv(x))
    assert lab.shape_text == "56×56×192 → 56×56×64" and lab.max_abs_error < 1e-4
    assert lab.weight.shape == (64, 192)


def test_reduction_sentence():
    assert reduction_text(2, 2, 16, 4) == ("2×2, stride 2: 16 → 4 values, 75% fewer activations; pooling has no "
                                           "weights — the 75% is of the activations (values) passed on, "
                                           "not of parameters")
    lab = pool_lab("toy", np.arange(16, dtype=np.float32).reshape(1, 4, 4), 2, 2)
    assert lab.reduction.startswith("2×2, stride 2: 16 → 4 values, 75% fewer")
    np.testing.assert_array_equal(lab.max_map, [[5, 7], [13, 15]])
    assert "no fewer" in reduction_text(3, 1, 16, 16)
