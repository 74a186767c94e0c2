"""convviz.core.geometry.arithmetic against PyTorch's own Conv2d / MaxPool2d / AvgPool2d."""
import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from convviz.core.geometry import arithmetic as g



GRID = list(itertools.product(range(1, 21), range(1, 8), range(1, 5), range(0, 4), range(1, 4)))


def _torch_size(layer, size):
    """Output width torch computes, or None when torch raises."""
    try:
        with torch.no_grad():
            return layer(torch.zeros(1, 1, size, size)).shape[-1]
    except RuntimeError:
        return None


def test_conv_output_size_matches_torch_over_grid():
    layers = {}
    for w, k, s, p, d in GRID:
        got = g.conv_axis(w, k, s, p, d)
        layer = layers.setdefault((k, s, p, d), nn.Conv2d(1, 1, k, s, p, d, bias=False))
        want = _torch_size(layer, w)
        if want is None:
            assert not got.ok and got.error, (w, k, s, p, d)
            assert "\n" not in got.error
        else:
            assert got.ok and got.output == want, (w, k, s, p, d, got.error)
            assert got.floor_output == want
            assert got.exact == Fraction(w + 2 * p - d * (k - 1) - 1, s) + 1


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_maxpool_output_size_matches_torch_over_grid(ceil_mode):
    for w, k, s, p, d in GRID:
        got = g.pool_axis(w, k, s, p, d, ceil_mode=ceil_mode)
        want = _torch_size(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode), w)
        if want is None:
            assert not got.ok and got.error, (w, k, s, p, d, ceil_mode)
        else:
            assert got.ok and got.output == want, (w, k, s, p, d, ceil_mode, got.error)
            # the last window starts inside the input or the left padding
            assert got.starts[-1] < w + p


def _zero_gradient_axis(layer, w):
    """Input rows whose gradient is zero when the layer's summed output is back-propagated."""
    x = torch.ones(1, 1, w, w, requires_grad=True)
    layer(x).sum().backward()
    grad = x.grad[0, 0]
    return tuple(int(i) for i in torch.nonzero(grad.abs().sum(dim=1) == 0).flatten())


def test_uncovered_rows_equal_zero_gradient_cells_of_all_ones_conv():
    """Zero padding only lengthens the input, so one gradient per padded size N = W + 2P
    serves every (W, P) with that N: input cell i is padded cell i + P."""
    zero_grad = {}
    for w, k, s, p, d in GRID:
        geom = g.conv_axis(w, k, s, p, d)
        if not geom.ok:
            continue
        key = (w + 2 * p, k, s, d)
        if key not in zero_grad:
            ones = torch.ones(1, 1, k, k)
            conv = lambda x: torch.nn.functional.conv2d(x, ones, None, s, 0, d)  # noqa: E731
            zero_grad[key] = set(_zero_gradient_axis(conv, key[0]))
        want = tuple(i for i in range(w) if i + p in zero_grad[key])
        assert geom.uncovered == want, (w, k, s, p, d)
        assert set(geom.trailing) | set(geom.gaps) == set(geom.uncovered)
    conv = nn.Conv2d(1, 1, 3, 3, 1, 2, bias=False)  # torch's own padding path agrees too
    nn.init.ones_(conv.weight)
    assert g.conv_axis(11, 3, 3, 1, 2).uncovered == _zero_gradient_axis(conv, 11)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_uncovered_rows_of_pooling_equal_zero_gradient_cells(ceil_mode):
    for w, k, s, p, _ in GRID:
        geom = g.pool_axis(w, k, s, p, 1, ceil_mode=ceil_mode)
        pool = nn.AvgPool2d(k, s, p, ceil_mode=ceil_mode)
        if _torch_size(pool, w) is None:
            assert not geom.ok
            continue
        assert geom.uncovered == _zero_gradient_axis(pool, w), (w, k, s, p, ceil_mode)


def test_textbook_fraction_case():
    geom = g.conv_axis(7, 3, 3, 0)
    assert geom.exact == Fraction(7, 3) and not geom.is_whole
    assert geom.output == 2 and geom.starts == (0, 3)
    assert geom.uncovered == (6,) and geom.trailing == (6,)
    ceil = g.pool_axis(7, 3, 3, 0, ceil_mode=True)
    assert ceil.output == 3 and ceil.partial and ceil.starts == (0, 3, 6)
    assert g.fraction_text(geom.exact) == "2.33"


def test_same_padding_keeps_size_for_odd_kernels():
    for k, d, w in itertools.product((1, 3, 5, 7), (1, 2, 3), (5, 9, 16)):
        same = g.same_padding(k, 1, d)
        assert same.padding == d * (k - 1) // 2
        geom = g.conv_axis(w, k, 1, same.padding, d)
        if geom.ok:
            assert geom.output == w
            assert _torch_size(nn.Conv2d(1, 1, k, 1, same.padding, d), w) == w


def test_same_padding_refuses_even_kernel_and_stride():
    even = g.same_padding(4)
    assert even.padding is None and "even" in even.reason
    strided = g.same_padding(3, stride=2)
    assert strided.padding is None and "stride" in strided.reason


def test_validation_messages_are_one_line_and_never_raise():
    cases = [g.AxisSpec(0, 3), g.AxisSpec(5, 0), g.AxisSpec(5, 3, 0), g.AxisSpec(5, 3, 1, -1),
             g.AxisSpec(3, 5), g.AxisSpec(5, 3, 1, 2, kind=g.POOL), g.AxisSpec(5, 3, ceil_mode=True)]
    for spec in cases:
        geom = g.analyse_axis(spec)
        assert not geom.ok and geom.output == 0
        assert geom.error and "\n" not in geom.error
    assert "larger than the padded input" in g.analyse_axis(g.AxisSpec(3, 5)).error
    assert "half the kernel" in g.analyse_axis(g.AxisSpec(5, 3, 1, 2, kind=g.POOL)).error


def test_32x32_with_5x5_and_padding_2_gives_32():
    assert g.output_size(32, 5, 1, 2) == 32


def test_asymmetric_padding_like_torch_same_for_even_kernel():
    spec = g.AxisSpec(10, 4, 1, 1, 2)
    conv = nn.Conv2d(1, 1, (1, 4), padding="same", bias=False)
    assert g.analyse_axis(spec).output == conv(torch.zeros(1, 1, 1, 10)).shape[-1] == 10


def test_sliding_output_equals_torch_conv_and_pool():
    x = g.toy_input(2, 9)
    w = g.toy_kernel(2, 3)
    rows = cols = g.conv_axis(9, 3, 2, 1, 2)
    ours = g.sliding_output(x, w, rows, cols)
    ref = torch.nn.functional.conv2d(torch.tensor(x)[None], torch.tensor(w)[None], stride=2, padding=1, dilation=2)
    np.testing.assert_allclose(ours, ref[0, 0].numpy())
    pool = g.pool_axis(7, 3, 3, 1, ceil_mode=True)
    ours = g.sliding_output(x[:, :7, :7], None, pool, pool)
    ref = torch.nn.functional.max_pool2d(torch.tensor(x[:, :7, :7])[None], 3, 3, 1, ceil_mode=True)
    assert ours.shape == (2, 3, 3)  # pooling is per channel: one map per channel, not the max across them
    np.testing.assert_allclose(ours, ref[0].numpy())


TOY_GRID = list(itertools.product(range(1, 10), range(1, 5), range(1, 4), range(0, 3), range(1, 3), (False, True)))


def _toy_layer(mode, c, f, k, s, p, d, ceil):
    """The torch module a toy mode stands for (None where that module has no such setting)."""
    if mode == "conv":
        if ceil:
            return None
        conv = nn.Conv2d(c, f, k, s, p, d).double()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(g.toy_kernel_bank(f, c, k)))
            conv.bias.copy_(torch.from_numpy(g.toy_bias(f)))
        return conv
    if mode == "max":
        return nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    if d > 1 or (mode == "l2" and p):
        return None
    return nn.AvgPool2d(k, s, p, ceil_mode=ceil) if mode == "avg" else nn.LPPool2d(2, k, s, ceil_mode=ceil)


@pytest.mark.parametrize("mode", ["conv", "max", "avg", "l2"])
def test_toy_layer_sizes_refusals_and_values_match_torch_modules(mode):
    """Every toy mode over (W, K, S, P, D, ceil_mode): the output size, the values (per channel
    for pooling, + bias for conv) and the refusals are torch's."""
    c, f = 2, 3
    values = g.toy_input(c, 9)
    checked = 0
    for w, k, s, p, d, ceil in TOY_GRID:
        spec = g.toy_spec(mode, w, k, s, p, d, ceil)
        geom = g.analyse_axis(spec)
        layer = _toy_layer(mode, c, f, k, s, p, d, ceil)
        if layer is None:
            assert not geom.ok or mode == "conv", (mode, w, k, s, p, d, ceil)
            continue
        x = torch.from_numpy(values[:, :w, :w].copy())[None]
        try:
            with torch.no_grad():
                ref = layer(x)[0].numpy()
        except RuntimeError:
            assert not geom.ok and geom.error and "\n" not in geom.error, (mode, w, k, s, p, d, ceil)
            continue
        assert geom.ok and geom.output == ref.shape[-1], (mode, w, k, s, p, d, ceil, geom.error)
        weights = g.toy_kernel_bank(f, c, k) if mode == "conv" else None
        ours = g.sliding_output(values[:, :w, :w], weights, geom, geom, g.toy_bias(f) if mode == "conv" else None)
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9, err_msg=str((mode, w, k, s, p, d, ceil)))
        checked += 1
    assert checked > 150


def test_lp_and_avg_pool_refuse_settings_their_modules_lack():
    assert "no dilation" in g.pool_axis(7, 3, 2, 0, 2, pool="avg").error
    assert "no padding" in g.pool_axis(7, 3, 2, 1, pool="l2").error
    assert g.pool_axis(7, 3, 2, 0, 1, pool="l2").output == 3


def test_same_padding_with_stride_depends_on_w():
    """W 7, K 3, S 2, P 4 gives 7 (torch): stride > 1 does not always shrink the output."""
    assert _torch_size(nn.Conv2d(1, 1, 3, 2, 4), 7) == 7
    same = g.same_padding(3, 2, 1, size=7)
    assert same.padding == 4 and "W = 7 only" in same.reason and "whatever" not in same.reason
    assert _torch_size(nn.Conv2d(1, 1, 3, 2, same.padding), 7) == 7


def test_windows_reading_is_inverse_of_taps():
    geom = g.conv_axis(11, 3, 2, 1, 2)
    for i in range(11):
        for o in geom.windows_reading(i):
            assert i + 1 in geom.taps(o)
    assert g.ranges_text((0, 1, 2, 5, 7, 8)) == "0–2, 5, 7–8"
