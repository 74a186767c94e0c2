"""Pooling lab against F.max_pool2d / F.avg_pool2d / F.lp_pool2d over a grid of settings."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convviz.core.geometry.arithmetic import pool_axis
from convviz.core.labs.pool import pool_lab




def _torch(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except RuntimeError:
        return None


def rows_of(n, k, s, p, ceil):
    return pool_axis(n, k, s, p, 1, ceil)


GRID = list(itertools.product((5, 7, 8), (6, 9), range(1, 5), range(1, 4), range(0, 3), (False, True)))


def test_pool_lab_matches_torch_over_grid():
    torch.manual_seed(0)
    maps = {(h, w): torch.randn(2, h, w) for h in (5, 7, 8) for w in (6, 9)}
    checked = refused = 0
    for h, w, k, s, p, ceil in GRID:
        x = maps[(h, w)]
        ref_max = _torch(F.max_pool2d, x[None], k, s, p, ceil_mode=ceil)
        if ref_max is None:
            with pytest.raises(ValueError):
                pool_lab("m", x.numpy(), k, s, p, ceil, channel=1)
            refused += 1
            continue
        lab = pool_lab("m", x.numpy(), k, s, p, ceil, channel=1)
        settings = (h, w, k, s, p, ceil)
        np.testing.assert_allclose(lab.max_map, ref_max[0, 1].numpy(), rtol=1e-6, err_msg=str(settings))
        ref_avg = F.avg_pool2d(x[None], k, s, p, ceil_mode=ceil)
        np.testing.assert_allclose(lab.avg_map, ref_avg[0, 1].numpy(), rtol=1e-5, atol=1e-6, err_msg=str(settings))
        excluded = pool_lab("m", x.numpy(), k, s, p, ceil, channel=1, count_include_pad=False)
        ref_excl = F.avg_pool2d(x[None], k, s, p, ceil_mode=ceil, count_include_pad=False)
        np.testing.assert_allclose(excluded.avg_map, ref_excl[0, 1].numpy(), rtol=1e-5, atol=1e-6, err_msg=str(settings))
        assert not p or any("do not count in the divisor (count_include_pad=False)" in n for n in excluded.notes)
        partial = ceil and (rows_of(h, k, s, p, ceil).partial or rows_of(w, k, s, p, ceil).partial)
        if p == 0:
            ref_l2 = F.lp_pool2d(x[None], 2, k, s, ceil_mode=ceil)
            np.testing.assert_allclose(lab.l2_map, ref_l2[0, 1].numpy(), rtol=1e-5, atol=1e-6, err_msg=str(settings))
            assert lab.l2_missing is None and lab.l2_formula == ("√(K²·mean x²)" if partial else "√Σx²")
            if not partial:  # a full window's L2 value is √Σx²
                top, left, bottom, right = lab.window(0)
                window = x[1, top:bottom + 1, left:right + 1]
                assert float(lab.l2_map[0, 0]) == pytest.approx(float(window.pow(2).sum().sqrt()), rel=1e-5)
        else:
            assert lab.l2_map is None and any("LPPool2d has no padding" in n for n in lab.notes)
            assert lab.l2_missing == f"padding {p}: LPPool2d cannot pad"
        assert lab.out_shape == tuple(ref_max.shape[1:])
        assert lab.frames == ref_max.shape[-1] * ref_max.shape[-2]
        # windows per frame: the same geometry as the Convolution panel, and torch's value inside it
        rows, cols = pool_axis(h, k, s, p, 1, ceil), pool_axis(w, k, s, p, 1, ceil)
        assert lab.row_starts == tuple(v - p for v in rows.starts)
        f = lab.frames - 1
        top, left, bottom, right = lab.window(f)
        r, c = divmod(f, lab.out_shape[2])
        patch = x[1, max(top, 0):bottom + 1, max(left, 0):right + 1]
        assert float(patch.max()) == pytest.approx(float(ref_max[0, 1, r, c]))
        checked += 1
    assert checked > 100 and refused > 5


def test_pool_lab_on_toy_and_refusals():
    x = np.arange(49, dtype=np.float32).reshape(1, 7, 7)
    lab = pool_lab("toy", x, 2, 2)
    assert lab.out_shape == (1, 3, 3) and "49 → 9 values, 82% fewer" in lab.reduction
    assert any("never read" in n for n in lab.notes)
    with pytest.raises(ValueError, match="half the kernel"):
        pool_lab("toy", x, 2, 2, padding=2)
    with pytest.raises(ValueError, match="channel 3"):
        pool_lab("toy", x, 2, 2, channel=3)
    with pytest.raises(ValueError, match="kernel"):
        pool_lab("toy", x, 0)


def test_view_averages_as_the_avgpool_layer_does():
    from torch import nn

    from convviz.core.capture.activations import Capture
    from convviz.core.labs.views import pool_lab_view
    from convviz.core.views.registry import ViewContext

    x = torch.rand(1, 3, 6, 7) + 1
    for include in (True, False):
        module = nn.AvgPool2d(3, 2, 1, count_include_pad=include)
        y = module(x)
        capture = Capture(logits=torch.zeros(1, 2), outputs={"pool": y}, inputs={"pool": x})
        lab = pool_lab_view(ViewContext(capture, None, "pool", module), channel=2)
        assert lab.source == "input" and lab.count_include_pad == include and lab.l2_map is None
        np.testing.assert_allclose(lab.avg_map, y[0, 2].numpy(), rtol=1e-6)
