"""Effective receptive field against torch: Luo et al.'s uniform 3×3 stack (σ = √(2n/3)), the gradient
inside the theoretical box, batched units equal to single ones, the model's own gradients untouched."""
import math

import numpy as np
import pytest
import torch

from convviz.core.capture.layer_table import layer_table
from convviz.core.tasks import TaskInputs, get_task
from convviz.core.where import erf

from test_finetune_fixtures import tiny_model
from test_where_look_top_patches import conv_model


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (40, 52, 3)).astype(np.uint8)


def test_uniform_stack_std_grows_as_sqrt_2n_over_3():
    demo = erf.stack_demo((1, 2, 3, 5, 8, 13, 21, 32))
    for n, std, predicted, box in zip(demo.depths, demo.std, demo.predicted, demo.box):
        assert predicted == pytest.approx(math.sqrt(2 * n / 3))
        assert std == pytest.approx(predicted, rel=0.02)
        assert box == 2 * n + 1
    profile = demo.profiles[-1]  # n-fold convolution of (1, 1, 1)/3: the centre entry is the most likely
    assert profile.size == 65 and profile.argmax() == 32 and profile.sum() == pytest.approx(1.0)
    assert demo.std[-1] / demo.box[-1] < demo.std[0] / demo.box[0] / 3  # the effective field shrinks against the box


def test_stack_demo_is_gaussian_like():
    _, profile = erf.stack_std(16)
    x = np.arange(profile.size) - 16
    sigma = math.sqrt(2 * 16 / 3)
    gauss = np.exp(-x ** 2 / (2 * sigma ** 2))
    gauss /= gauss.sum()
    assert np.abs(profile - gauss).max() < 0.02 * profile.max()  # central limit: already close at n = 16


def test_gradient_lies_in_the_theoretical_box(rgb):
    loaded = conv_model(32)
    rows = layer_table(loaded.module, (3, 32, 32))
    for unit in ((0, 0), (3, 2), (5, 5)):
        one = erf.unit_erf(loaded, rgb, "2", unit, channel=1, rows=rows)
        assert one.outside == 0.0 and one.heat.max() == pytest.approx(1.0)
        t, b, l, r = one.seen
        hit_rows, hit_cols = np.flatnonzero(one.heat.sum(1)), np.flatnonzero(one.heat.sum(0))
        assert (hit_rows[0], hit_rows[-1], hit_cols[0], hit_cols[-1]) == (t, b, l, r)  # convolutions only: all of it
        assert 0 < one.share <= 1 and one.pixels == pytest.approx(one.share * one.seen_area)
        assert one.input_rgb.shape == (32, 32, 3)


def test_mass_share_counts_the_fewest_pixels():
    heat = np.zeros((10, 10))
    heat[5, 5], heat[5, 6], heat[0, 0] = 8.0, 1.5, 0.5  # 90 % of 10 needs the two largest
    assert erf.mass_share(heat, (0, 9, 0, 9)) == (0.02, 2)
    assert erf.mass_share(heat, (5, 5, 5, 6)) == (1.0, 2)


def test_real_network_batched_units_equal_single_units_and_model_grads_untouched(rgb):
    loaded = tiny_model(64)
    rows = layer_table(loaded.module, (3, 64, 64))
    layer = "features.4.block.0"
    average = erf.layer_erf(loaded, rgb, layer, rows=rows, grid=3)
    assert len(average.units) == 9 and average.shares.shape == (9,)
    for unit, share, std in zip(average.units, average.shares, average.stds):
        one = erf.unit_erf(loaded, rgb, layer, unit, rows=rows)
        assert one.share == pytest.approx(share, rel=1e-6) and one.std == pytest.approx(tuple(std), rel=1e-6)
        assert one.outside < 0.02  # squeeze-excitation gates pool the whole image: a sliver lies outside the box
    assert all(p.grad is None for p in loaded.module.parameters())
    assert 0 < average.mean_share <= 1


def test_effective_field_is_much_smaller_than_the_box_on_the_bundled_model():
    from convviz.core.model.loading import load_model

    loaded = load_model("default")
    rgb = np.random.default_rng(1).integers(0, 256, (224, 224, 3)).astype(np.uint8)
    one = erf.unit_erf(loaded, rgb, "blocks.3")
    assert one.rf[0] > 100 and one.share < 0.5  # Luo et al.: Gaussian-like, a fraction of the theoretical field
    assert one.outside < 1e-6


def test_task_and_bad_input(rgb):
    loaded = tiny_model(64)
    run = get_task("where.erf:erf_task")
    result = run(TaskInputs(args={"layer": "features.3", "unit": (2, 3), "channel": 4, "average": True}, model=loaded, rgb=rgb))
    assert result.unit.unit == (2, 3) and result.unit.channel == 4 and result.layer.channel == 4
    assert "90 % of |∂unit/∂input| lies in" in result.unit.sentence()
    with pytest.raises(ValueError, match=r"^unit \(9, 0\) is outside features.3's 8×8 map \(rows 0–7, columns 0–7\)$"):
        run(TaskInputs(args={"layer": "features.3", "unit": (9, 0)}, model=loaded, rgb=rgb))
    with pytest.raises(ValueError, match=r"^channel 24 is out of range: features.3 has 24 channels \(0–23\)$"):
        run(TaskInputs(args={"layer": "features.3", "channel": 24}, model=loaded, rgb=rgb))
    vector = run(TaskInputs(args={"layer": "classifier.0", "channel": 7}, model=loaded, rgb=rgb))
    assert vector.unit.seen == (0, 63, 0, 63)
