"""Every fact the activation lab states about ReLU, ReLU6, SiLU and Hardswish, checked against torch."""
import numpy as np
import pytest
import torch

from convviz.core.labs.activation import ACTIVATIONS, DIFFERENCES, activation_lab

X = torch.linspace(-12, 12, 240_001, dtype=torch.float64)  # step 1e-4
STEP = 1e-4


def _slope(fn, at, side):
    h = 1e-4
    at = torch.tensor(float(at), dtype=torch.float64)
    return float((fn(at + h) - fn(at)) / h) if side > 0 else float((fn(at) - fn(at - h)) / h)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_stated_fact_holds_in_torch(name):
    fn, formula, shape = ACTIVATIONS[name]
    y = fn(X)
    for dtype in (torch.float32, torch.float64):  # the float32 values the model computes agree
        np.testing.assert_allclose(fn(X.to(dtype)).double().numpy(), y.numpy(), atol=2e-6)
    zero = y == 0
    if shape.zero_upto is not None:
        z = shape.zero_upto
        assert zero[X <= z].all()
        just_above = (X > z + 1e-6) & (X < z + 0.5) & (X.abs() > 1e-6)
        assert not zero[just_above].any()  # nowhere above z (x = 0 aside): z is where zero ends
    else:
        assert not zero[(X < 0) & (X > -12)].any()  # negatives survive
    if shape.identity_from is not None:
        lo, hi = shape.identity_from, shape.cap if shape.cap is not None else float("inf")
        inside = (X >= lo) & (X <= hi)
        np.testing.assert_allclose(y[inside].numpy(), X[inside].numpy(), rtol=1e-15, atol=0)  # x·6/6 rounds
        assert not ((y - X).abs() < 1e-9)[(X < lo - 1e-6) & (X > lo - 0.5) & (X.abs() > 1e-6)].any()
    if shape.cap is not None:
        assert (y[X >= shape.cap] == shape.cap).all() and y.max() == shape.cap
    lowest = int(torch.argmin(y))
    if shape.lowest is not None:
        x_min, y_min = shape.lowest
        assert float(y[lowest]) == pytest.approx(y_min, abs=5e-4) and float(X[lowest]) == pytest.approx(x_min, abs=5e-3)
        assert f"{y_min:.3g}".replace("-", "−") in shape.describe()
    else:
        assert float(y.min()) == 0.0
    for k in shape.kinks:  # the slope jumps there …
        assert abs(_slope(fn, k, +1) - _slope(fn, k, -1)) > 0.2, (name, k)
    slopes = torch.diff(y) / STEP  # … and nowhere else: away from the kinks the slope changes gently
    away = torch.ones_like(slopes, dtype=torch.bool)
    for k in shape.kinks:
        away &= (X[1:] - k).abs() > 2 * STEP
    jumps = torch.diff(slopes)[away[1:] & away[:-1]].abs()
    assert float(jumps.max()) < 1e-3, name
    assert shape.describe() in DIFFERENCES and formula.startswith(name)


def test_lab_sentence_is_the_facts():
    pre = torch.randn(2, 5, 5) * 5
    for name, (fn, _, shape) in ACTIVATIONS.items():
        lab = activation_lab("x", name, pre, fn(pre))
        assert lab.behaviour == f"{name}(x) is {shape.describe()}" and lab.differences == DIFFERENCES
    hardswish = ACTIVATIONS["Hardswish"][2].describe()
    assert "0 for x ≤ −3" in hardswish and "x for x ≥ 3" in hardswish and "curved between −3 and 3" in hardswish


def test_a_share_that_is_not_zero_is_never_written_as_zero():
    from convviz.core.labs.text import share_text

    assert share_text(0.0) == "0.0%" and share_text(1.0) == "100.0%" and share_text(0.4012) == "40.1%"
    assert share_text(3e-5) == "<0.1%" and share_text(1 - 3e-5) == ">99.9%"
    pre = torch.full((1, 100, 100), -1.0)
    pre[0, 0, 0] = 7.0  # one value of 10,000 capped
    lab = activation_lab("x", "ReLU6", pre, torch.nn.functional.relu6(pre))
    assert lab.capped_share == pytest.approx(1e-4) and "<0.1% capped at 6" in lab.summary
