"""The classifier made fully convolutional: dense scores against per-crop logits where exact, their
window and stride against the Layers table, and one sentence for each model or size it cannot take."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from convviz.core.capture.layer_table import layer_table
from convviz.core.model.loading import LoadedModel, build_architecture, load_model
from convviz.core.model.preprocess import Preprocess
from convviz.core.where import dense
from convviz.core.where.fcn import dense_logits, find_head
from convviz.core.where.frame import _trace, layer_grid


def toy(padding: int = 0) -> nn.Module:
    """Three 3×3 convolutions (strides 1, 2, 2), global average pool, one linear layer: rf 9, jump 4."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=padding), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=padding), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=padding), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    ).eval()


def toy_loaded(padding: int = 0) -> LoadedModel:
    return LoadedModel("toy", "toy net", toy(padding), Preprocess(input_size=33, crop_pct=1.0, mean=(0.5,) * 3, std=(0.25,) * 3))


@pytest.fixture(scope="module")
def bundled():
    return load_model("default")


def test_dense_scores_are_the_classifiers_logits_on_each_window_where_exact():
    model = toy()
    head = find_head(model, 33)
    assert head.maps == ("5",) and head.linear == "8" and head.kinds == ("mean",)
    x = torch.randn(1, 3, 41, 57)
    scores = dense_logits(model, head, x)[0]
    rows = {r.name: r for r in layer_table(model, (3, 41, 57))}
    assert rows["5"].rf == (9, 9) and rows["5"].jump == (4, 4) and rows["5"].start == (4.0, 4.0)
    assert scores.shape == (5, 9, 13)
    with torch.no_grad():
        for i in range(9):
            for j in range(13):  # unit (i, j) sees rows 4i … 4i + 8, columns 4j … 4j + 8
                crop = model(x[..., 4 * i:4 * i + 9, 4 * j:4 * j + 9])[0]
                torch.testing.assert_close(scores[:, i, j], crop, rtol=1e-5, atol=1e-5)


def test_the_window_and_stride_stated_are_the_layer_tables_and_exactness_is_said():
    loaded = toy_loaded()
    rgb = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    maps = dense.dense_maps(loaded, rgb, 64)
    h, w = maps.frame.input_hw
    row = next(r for r in layer_table(loaded.module, (3, h, w)) if r.name == "5")
    assert maps.grid.rf == row.rf and maps.grid.jump == row.jump and maps.grid.start == row.start
    assert maps.shape == row.out_shape[1:]
    assert maps.exact and maps.note.startswith("Exact") and "9 px window" in maps.caption()
    assert "every 4 px (its total stride)" in maps.caption()
    np.testing.assert_allclose(maps.probs.sum(0), 1.0, rtol=1e-5)


def test_padded_networks_are_said_to_be_approximate_and_are():
    loaded = toy_loaded(padding=1)
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    maps = dense.dense_maps(loaded, rgb, 64)
    assert not maps.exact and maps.note.startswith("Approximate: the network pads")
    x = dense.photo_tensor(loaded.preprocess, rgb, maps.frame.input_hw)
    scores = dense_logits(loaded.module, find_head(loaded.module, 33), x)[0]
    with torch.no_grad():  # unit (4, 4) centred on pixel 16: its 9-pixel window is rows/cols 12 … 20
        crop = loaded.module(x[..., 12:21, 12:21])[0]
    assert (scores[:, 4, 4] - crop).abs().max() > 1e-3


@pytest.mark.parametrize("hw", [(448, 448), (259, 777)])
def test_bundled_dense_scores_average_to_its_logits_and_its_window_is_the_layer_tables(bundled, hw):
    model = bundled.module
    head = find_head(model, 224)
    assert head.maps == ("bn2",) and head.linear == "classifier"
    x = torch.randn(1, 3, *hw, generator=torch.Generator().manual_seed(2))
    scores = dense_logits(model, head, x)
    with torch.no_grad():
        torch.testing.assert_close(scores.mean((2, 3)), model(x), rtol=1e-4, atol=1e-4)
    row = next(r for r in layer_table(model, (3, *hw)) if r.name == "bn2")
    grid = layer_grid(model, "bn2", hw, 224)
    assert (grid.rf, grid.jump, grid.start, grid.shape) == (row.rf, row.jump, row.start, row.out_shape[1:])
    assert tuple(scores.shape[-2:]) == grid.shape


@pytest.mark.parametrize("hw", [(300, 451), (365, 549), (225, 700)])
def test_grid_traced_at_a_small_size_with_the_same_residues_is_the_full_trace(bundled, hw):
    assert layer_grid(bundled.module, "bn2", hw, 224) == _trace(bundled.module, "bn2", hw)
    resnet = load_model("resnet18", require_weights=False).module
    assert layer_grid(resnet, "layer4", hw, 224) == _trace(resnet, "layer4", hw)


def test_a_multi_layer_head_becomes_one_convolution_per_map():
    module, preprocess, _, _ = build_architecture("lite0", num_classes=5, taps=(4, 5))
    module.eval()
    head = find_head(module, 224)
    assert head.maps == ("bn2", "blocks.4", "blocks.5") and [hi - lo for lo, hi in head.cols] == [1280, 112, 192]
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    scores = dense_logits(module, head, x)
    with torch.no_grad():  # blocks.4 (14×14) pools evenly onto bn2's 7×7 grid: the mean is the logits exactly
        torch.testing.assert_close(scores.mean((2, 3)), module(x), rtol=1e-4, atol=1e-4)
    loaded = LoadedModel("tapped", "tapped", module, preprocess)
    maps = dense.dense_maps(loaded, np.zeros((100, 100, 3), np.uint8), 224)
    assert not maps.exact and "also reads blocks.4, blocks.5" in maps.note


def test_a_head_that_reads_log_standard_deviations_adds_their_share_at_every_position():
    """A fine-tuned head pooled as means and log standard deviations (core.taps): each log std is a
    whole-map statistic, the same share at every position; the mean over positions is still the logits."""
    module, preprocess, _, _ = build_architecture("lite0", num_classes=3, taps=(4, 5), pool="mean+logstd")
    module.eval()
    head = find_head(module, 224)
    assert head.maps == ("bn2", "blocks.4", "blocks.4", "blocks.5", "blocks.5")
    assert head.kinds == ("mean", "mean", "logstd", "mean", "logstd")
    assert [hi - lo for lo, hi in head.cols] == [1280, 112, 112, 192, 192]
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    scores = dense_logits(module, head, x)
    with torch.no_grad():
        torch.testing.assert_close(scores.mean((2, 3)), module(x), rtol=1e-4, atol=1e-4)
        # written out: bn2's 1×1 convolution plus blocks.4 / blocks.5 pooled onto its grid, plus the constants
        seen = {}
        hooks = [module.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: seen.__setitem__(n, o))
                 for n in ("bn2", "blocks.4", "blocks.5")]
        module(x)
        for h in hooks:
            h.remove()
        w, b = module.classifier.weight, module.classifier.bias
        want = torch.einsum("kc,nchw->nkhw", w[:, :1280], seen["bn2"]) + b[None, :, None, None]
        for (lo, hi), name in (((1280, 1392), "blocks.4"), ((1504, 1696), "blocks.5")):
            want += torch.einsum("kc,nchw->nkhw", w[:, lo:hi], torch.nn.functional.adaptive_avg_pool2d(seen[name], (7, 7)))
            logstd = seen[name].flatten(2).std(2, unbiased=False).log()
            want += (logstd @ w[:, hi:hi + (hi - lo)].T)[:, :, None, None]
    torch.testing.assert_close(scores, want, rtol=1e-4, atol=1e-4)
    loaded = LoadedModel("tapped", "tapped", module, preprocess)
    maps = dense.dense_maps(loaded, np.zeros((100, 100, 3), np.uint8), 224)
    assert not maps.exact and maps.note == (
        "Approximate: the head also reads blocks.4, blocks.5, pooled here onto bn2's grid, not over each window; "
        "it reads the log standard deviation of blocks.4 and blocks.5 over the whole map, so that share of the score "
        "is the same at every position.")


def test_models_without_a_linear_head_are_refused_in_one_sentence():
    mobilenet = load_model("mobilenet_v3_small", require_weights=False)
    two_layers = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.ReLU(),
                               nn.Linear(4, 3)).eval()
    softmaxed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3), nn.Softmax(1)).eval()
    for loaded in (mobilenet, LoadedModel("two", "two linear layers", two_layers, Preprocess(input_size=32)),
                   LoadedModel("soft", "softmax net", softmaxed, Preprocess(input_size=32))):
        with pytest.raises(ValueError) as info:
            dense.dense_maps(loaded, np.zeros((40, 40, 3), np.uint8), 64)
        text = str(info.value)
        assert text.startswith(loaded.title + ": ") and "no linear head to turn into a 1×1 convolution" in text
        assert "crop-and-classify works with any classifier" in text and "\n" not in text


def test_input_sizes_the_model_refuses_are_one_sentence():
    loaded = toy_loaded()
    with pytest.raises(ValueError, match=r"^input size must be from 32 to 2048 pixels, not 8$"):
        dense.dense_maps(loaded, np.zeros((40, 40, 3), np.uint8), 8)
    with pytest.raises(ValueError) as info:  # a 20×400 strip at about 32² px is 6 px tall: too small for the 9 px window
        dense.dense_maps(loaded, np.zeros((20, 400, 3), np.uint8), 32)
    assert str(info.value).startswith("toy net cannot take a 128×6 input (") and "\n" not in str(info.value)


def test_input_size_keeps_the_aspect_and_the_area():
    assert dense.input_hw((300, 900), 448) == (259, 776)
    assert dense.input_hw((400, 400), 448) == (448, 448)
    h, w = dense.input_hw((10, 10_000), 448)
    assert w == 4 * 448 and h == 2


def test_a_model_that_predicts_with_its_mirror_image_scores_every_position_so(bundled):
    """With mirror averaging (a fine-tuned model's choice) the dense map of the mirrored photo is the
    mirrored map of the photo; without it, it is not. The note says the scores are approximate."""
    from dataclasses import replace

    rgb = np.random.default_rng(5).integers(0, 255, (200, 260, 3), dtype=np.uint8)
    mirrored = replace(bundled, mirror=True)
    maps = dense.dense_maps(mirrored, rgb, 320)
    flipped = dense.dense_maps(mirrored, rgb[:, ::-1].copy(), 320)
    np.testing.assert_allclose(flipped.probs, maps.probs[:, :, ::-1], atol=2e-5)
    assert not maps.exact and "mirror image" in maps.note
    plain = dense.dense_maps(bundled, rgb, 320)
    assert np.abs(dense.dense_maps(bundled, rgb[:, ::-1].copy(), 320).probs - plain.probs[:, :, ::-1]).max() > 1e-3
