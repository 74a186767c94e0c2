"""Grad-CAM against a plain autograd reference; its geometry against the Layers table; the cat's box."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from convviz.core.images import load_image
from convviz.core.capture.layer_table import layer_table
from convviz.core.model.loading import LoadedModel, load_model
from convviz.core.model.preprocess import Preprocess
from convviz.core.tasks import TaskInputs, TaskState, get_task
from convviz.core.where.frame import Frame, Grid, to_photo
from convviz.core.where.gradcam import CamResult, default_layer, grad_cam, layer_cam

CAT_CLASSES = (281, 282, 285)  # tabby, tiger cat, Egyptian cat


@pytest.fixture(scope="module")
def bundled():
    return load_model("default")


@pytest.fixture(scope="module")
def cat_rgb(sample_path_module):
    return load_image(sample_path_module("cat")).rgb


@pytest.fixture(scope="module")
def sample_path_module():
    from convviz.ui.settings import sample_path

    return sample_path


def reference_cam(model: nn.Module, x: torch.Tensor, layer: str, target: int) -> np.ndarray:
    """Grad-CAM written out: full autograd pass, A from a forward hook, w_c = mean ∂y/∂A_c, ReLU(Σ w_c A_c)."""
    module = dict(model.named_modules())[layer]
    kept = []
    handle = module.register_forward_hook(lambda m, a, out: kept.append(out))
    try:
        with torch.enable_grad():
            logits = model(x)
            (grad,) = torch.autograd.grad(logits[0, target], kept[0])
    finally:
        handle.remove()
    acts = kept[0].detach()[0]
    weights = grad[0].mean(dim=(1, 2))
    return torch.relu(torch.einsum("c,chw->hw", weights, acts)).numpy()


@pytest.mark.parametrize("layer", ["bn2", "blocks.5", "blocks.3.0.conv_pw"])
def test_layer_cam_matches_plain_autograd_on_the_bundled_model(bundled, cat_rgb, layer):
    x = bundled.preprocess.to_tensor(cat_rgb)
    for target in (282, 967):
        cam, logits, index, kind = layer_cam(bundled.module, x, layer, target)
        ref = reference_cam(bundled.module, x, layer, target)
        assert index == target and cam.shape == ref.shape
        np.testing.assert_allclose(cam, ref, rtol=1e-4, atol=1e-6 * max(1.0, float(np.abs(ref).max())))
        assert ref.max() > 0  # a map that could differ
    assert all(p.grad is None for p in bundled.module.parameters())  # no weight gradients left behind
    assert not any(m._forward_hooks for m in bundled.module.modules())


def test_layer_cam_on_resnet_with_in_place_relu_after_the_layer():
    torch.manual_seed(0)
    model = load_model("resnet18", require_weights=False).module
    x = torch.randn(1, 3, 96, 96)
    for layer in ("layer4", "layer3", "layer2.1.conv2"):  # layer2.1.conv2 → bn2 → += identity → relu_
        cam, _, _, _ = layer_cam(model, x, layer, 7)
        np.testing.assert_allclose(cam, reference_cam(model, x, layer, 7), rtol=1e-4, atol=1e-6)


def test_stride_and_window_are_the_layer_tables(bundled, cat_rgb):
    rows = layer_table(bundled.module, (3, 224, 224))
    assert default_layer(rows) == "bn2"
    for layer in ("bn2", "blocks.4"):
        row = next(r for r in rows if r.name == layer)
        for given in (rows, ()):
            result = grad_cam(bundled, cat_rgb, 282, layer, given)
            assert result.grid.rf == tuple(map(float, row.rf)) and result.grid.jump == tuple(map(float, row.jump))
            assert result.grid.start == row.start and result.grid.shape == row.out_shape[1:]
            side = (bundled.preprocess.crop_box(451, 300)[2] - bundled.preprocess.crop_box(451, 300)[0]) / 224
            assert result.stride_photo == pytest.approx(row.jump[0] * side)
            assert f"one unit every {row.jump[0]:g} input px = {row.jump[0] * side:.1f} photo px" in result.caption()


def test_cat_photo_box_covers_the_cat(bundled, cat_rgb):
    result = grad_cam(bundled, cat_rgb)
    assert result.index in CAT_CLASSES
    x0, y0, x1, y1 = result.box
    # the cat's eyes and nose (photo pixels, read off resources/samples/cat.jpg)
    for px, py in ((172, 112), (318, 137), (262, 243)):
        assert x0 <= px <= x1 and y0 <= py <= y1, (result.box, (px, py))
    left, top, right, bottom = result.frame.edges_to_photo(0, 0, 224, 224)
    assert (x1 - x0) * (y1 - y0) >= 0.4 * (right - left) * (bottom - top)
    assert left - 1 <= x0 and x1 <= right + 1 and top - 1 <= y0 and y1 <= bottom + 1  # inside what the model saw
    assert "not a trained box regressor" in result.caption()
    assert result.prob == pytest.approx(float(bundled.probabilities(bundled.preprocess.to_tensor(cat_rgb))[0, result.index]))


def test_heat_is_the_cam_placed_by_unit_centres():
    grid = Grid((3, 4), (5.0, 5.0), (4.0, 4.0), (2.0, 3.0))
    frame = Frame(10.0, 20.0, 1.0, 1.0, (40, 40), (12, 16))
    maps = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    out = to_photo(maps, grid, frame, (40, 40), outside=-1)[0]
    for i in range(3):
        for j in range(4):  # unit (i, j) is centred on input (2 + 4i, 3 + 4j) = photo (22 + 4i, 13 + 4j)
            assert out[22 + 4 * i, 13 + 4 * j] == pytest.approx(maps[0, i, j])
    assert out[24, 15] == pytest.approx(maps[0, :2, :2].mean())  # half-way between four centres
    assert out[0, 0] == -1 and out[19, 15] == -1 and out[20, 10] == maps[0, 0, 0]  # outside / edge clamp


def test_bad_input_is_one_sentence(bundled, cat_rgb):
    for target, layer, words in ((1000, None, "class 1000 is out of range: this model has 1000 classes (0–999)"),
                                 (-1, None, "out of range"),
                                 ("espreso", None, "did you mean 'espresso'"),
                                 (None, "global_pool", "global_pool: its output (1280) has no spatial extent"),
                                 (None, "global_pool.pool", "(1280×1×1) has no spatial extent"),
                                 (None, "classifier", "classifier: its output (1000) has no spatial extent"),
                                 (None, "blocks.99", "no layer named 'blocks.99'")):
        with pytest.raises(ValueError) as info:
            grad_cam(bundled, cat_rgb, target, layer)
        assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript_is_refused_in_one_sentence():
    net = torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval())
    loaded = LoadedModel("ts", "net.ts (TorchScript)", net, Preprocess(input_size=16, crop_pct=1.0))
    with pytest.raises(ValueError, match=r"^net.ts \(TorchScript\): TorchScript runs its layers outside Python"):
        grad_cam(loaded, np.zeros((16, 16, 3), np.uint8), 0, "0")


def test_model_without_spatial_layers_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    loaded = LoadedModel("mlp", "mlp", model, Preprocess(input_size=8, crop_pct=1.0))
    with pytest.raises(ValueError, match="no layer with a spatial output"):
        grad_cam(loaded, np.zeros((8, 8, 3), np.uint8))


def test_the_task_reports_and_returns_plain_data(bundled, cat_rgb):
    seen = []
    run = get_task("where.gradcam:gradcam_task")
    rows = tuple(layer_table(bundled.module, (3, 224, 224)))
    result = run(TaskInputs(args={"target": "tiger cat", "threshold": 0.4}, model=bundled, rgb=cat_rgb, rows=rows),
                 TaskState(seen.append))
    assert isinstance(result, CamResult) and result.index == 282 and result.threshold == 0.4
    assert seen[0].fraction == 0.0 and seen[-1].fraction == 1.0
    for f in dataclasses.fields(result):
        assert not isinstance(getattr(result, f.name), (torch.Tensor, nn.Module))
    assert result.heat.shape == (300, 451) and 0 <= result.heat.min() and 0.95 <= result.heat.max() <= 1.0
