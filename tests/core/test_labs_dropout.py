"""The dropout lab against torch.nn.functional in train mode (same seed, same draws) and its sentences."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convviz.core.capture.activations import Capture
from convviz.core.labs.names import DROPOUT_KINDS, DROPOUT_TYPE_NAMES
from convviz.core.labs.views import dropout_lab_view, lab_for
from convviz.core.labs.dropout import SELU_SATURATION, alpha_constants, dropout_kind, dropout_lab
from convviz.core.views.registry import ViewContext

#: kind → torch's functional form on a (C, H, W) map as the layer sees it (a batch of one)
TORCH = {
    "Dropout": lambda x, p: F.dropout(x, p, training=True),
    "Dropout1d": lambda x, p: F.dropout1d(x.reshape(1, x.shape[0], -1), p, training=True).reshape(x.shape),
    "Dropout2d": lambda x, p: F.dropout2d(x[None], p, training=True)[0],
    "AlphaDropout": lambda x, p: F.alpha_dropout(x, p, training=True),
    "FeatureAlphaDropout": lambda x, p: F.feature_alpha_dropout(x[None], p, training=True)[0],
}


def _torch(kind, x, p, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TORCH[kind](x, p)


@pytest.mark.parametrize("kind", DROPOUT_KINDS)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_each_dropout_is_torchs(kind, p):
    x = torch.randn(12, 5, 6, generator=torch.Generator().manual_seed(1)) + 0.3
    lab = dropout_lab("d", x, p=p, seed=11, train=True, channel=4, kind=kind)
    ref = _torch(kind, x, p, 11)
    np.testing.assert_array_equal(lab.output_map, ref[4].numpy())
    assert lab.mean_after == pytest.approx(float(ref.mean()), rel=1e-6, abs=1e-7)
    module = getattr(nn, kind)(p).train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        shaped = x.reshape(1, 12, -1) if kind == "Dropout1d" else x[None]
        np.testing.assert_array_equal(module(shaped).reshape(x.shape)[4].numpy(), lab.output_map)
    kept = lab.mask_map
    if kind in ("AlphaDropout", "FeatureAlphaDropout"):
        a, b = alpha_constants(p)
        assert a == pytest.approx(1 / math.sqrt((SELU_SATURATION ** 2 * p + 1) * (1 - p)))
        np.testing.assert_allclose(lab.output_map[kept], a * lab.input_map[kept] + b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(lab.output_map[~kept], -a * SELU_SATURATION * (1 - p), rtol=1e-6)
        assert lab.dropped_value == pytest.approx(-a * SELU_SATURATION * (1 - p)) and lab.scale == pytest.approx(a)
        assert "1/(1−p)" in lab.text and "no 1/(1−p)" in lab.text
    else:
        np.testing.assert_array_equal(kept, ref[4].numpy() != 0)
        np.testing.assert_allclose(lab.output_map[kept], lab.input_map[kept] / (1 - p), rtol=1e-6)
        assert lab.scale == pytest.approx(1 / (1 - p)) and lab.dropped_value == 0.0
    if kind in ("Dropout1d", "Dropout2d", "FeatureAlphaDropout"):
        assert kept.all() or not kept.any()  # one draw per channel
        gone = lab.dropped_value if kind == "FeatureAlphaDropout" else 0.0
        whole = int(torch.isclose(ref.flatten(1), torch.tensor(gone)).all(1).sum())  # torch's dropped channels
        assert lab.channels_dropped == whole and f"{whole} of 12 channels dropped whole" in lab.text


@pytest.mark.parametrize("kind", DROPOUT_KINDS)
def test_eval_p0_p1_as_torch(kind):
    x = torch.randn(3, 4, 4)
    for p, train in ((0.5, False), (0.0, True), (1.0, True)):
        lab = dropout_lab("d", x, p=p, seed=0, train=train, channel=1, kind=kind)
        ref = _torch(kind, x, p, 0) if train else x
        np.testing.assert_array_equal(lab.output_map, ref[1].numpy())
        assert lab.identity == (not train or p == 0)
        if p == 1:
            assert not lab.mask_map.any() and "all zeros" in lab.text


@pytest.mark.parametrize("kind", DROPOUT_KINDS)
def test_expected_mean_is_the_mean_over_masks_and_the_sentence_says_this_samples_move(kind):
    x = torch.rand(4, 3, 3, generator=torch.Generator().manual_seed(2)) + 0.5  # small map: sample means vary a lot
    p = 0.6
    labs = [dropout_lab("d", x, p=p, seed=s, kind=kind) for s in range(400)]
    expected = labs[0].expected_mean
    if kind in ("AlphaDropout", "FeatureAlphaDropout"):
        a, _ = alpha_constants(p)
        assert expected == pytest.approx(a * (1 - p) * float(x.mean()))
    else:
        assert expected == pytest.approx(float(x.mean()))
    means = np.array([lab.mean_after for lab in labs])
    assert abs(means.mean() - expected) < 4 * means.std() / math.sqrt(len(means)) + 1e-6
    for lab in labs[:20]:
        move = 100 * (lab.mean_after - expected) / abs(expected)
        assert lab.mean_move == pytest.approx(move)
        assert f"this sample's mean moved by {move:+.1f}%" in lab.text and "about the same" not in lab.text
    assert max(abs(lab.mean_move) for lab in labs) > 20  # so "about the same" would have been false


def test_alpha_dropout_keeps_mean_0_and_variance_1_of_a_standardised_input():
    x = torch.randn(64, 32, 32, generator=torch.Generator().manual_seed(3))
    lab = dropout_lab("d", x, p=0.3, seed=5, kind="AlphaDropout")
    out = _torch("AlphaDropout", x, 0.3, 5)
    assert abs(float(out.mean())) < 0.02 and abs(float(out.var()) - 1) < 0.03
    assert "keeps mean 0 and variance 1 of an input that has them" in lab.text


def test_view_takes_the_layers_own_dropout_and_p():
    x = torch.randn(1, 6, 5, 5)
    capture = Capture(logits=torch.zeros(1, 2), outputs={"drop": x.clone()}, inputs={"drop": x})
    for module in (nn.Dropout2d(0.3), nn.AlphaDropout(0.2), nn.FeatureAlphaDropout(0.4), nn.Dropout(0.1)):
        ctx = ViewContext(capture, None, "drop", module)
        lab = dropout_lab_view(ctx, seed=4, channel=2)
        kind = type(module).__name__
        assert lab.kind == kind == dropout_kind(module) and lab.p == pytest.approx(module.p)
        np.testing.assert_array_equal(lab.output_map, _torch(kind, x[0], module.p, 4)[2].numpy())
        assert lab_for(module) == ("dropout",)
    other = dropout_lab_view(ViewContext(capture, None, "drop", nn.Conv2d(6, 6, 1)), dropout="Dropout2d")
    assert other.kind == "Dropout2d" and other.p == 0.5
    assert set(DROPOUT_KINDS) <= set(DROPOUT_TYPE_NAMES)


def test_sequence_input_of_dropout1d():
    x = torch.randn(7, 20)  # (C, L), unbatched
    lab = dropout_lab("d", x, p=0.5, seed=9, channel=3, kind="Dropout1d")
    ref = _torch("Dropout1d", x, 0.5, 9)
    np.testing.assert_array_equal(lab.output_map[0], ref[3].numpy())
    with pytest.raises(ValueError, match="unknown dropout"):
        dropout_lab("d", x, kind="Dropout3d")
