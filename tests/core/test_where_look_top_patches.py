"""Top patches per channel against torch: the running top-9 equals a brute-force recomputation, the
crop is the argmax unit's receptive field (layer-table arithmetic and input gradients), the pass is
cached and cancellable, bad input is one sentence."""
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from convviz.core.capture.activations import Capturer
from convviz.core.images import ImageError, load_image
from convviz.core.capture.layer_table import layer_table
from convviz.core.model.loading import LoadedModel
from convviz.core.model.preprocess import Preprocess
from convviz.core.tasks import Cancelled, TaskInputs, TaskState, get_task
from convviz.core.where import top_patches as tp

from test_finetune_fixtures import tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATS_DOGS = os.path.join(ROOT, "..", "shared", "data", "cats-dogs-60")


@pytest.fixture(autouse=True)
def _fresh_memo(monkeypatch):
    monkeypatch.setattr(tp, "_MEMO", {})


def photos(folder, count=13, size=(40, 48), seed=0):
    """``count`` PNG photos of noise with a bright square somewhere (distinct maxima), in two sub-folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        sub = os.path.join(folder, "a" if i % 2 else "b")
        os.makedirs(sub, exist_ok=True)
        arr = rng.integers(0, 120, (size[0], size[1], 3)).astype(np.uint8)
        y, x = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
        arr[y:y + 8, x:x + 8] = rng.integers(120, 256, 3)
        Image.fromarray(arr).save(os.path.join(sub, f"{i:02d}.png"))
    return str(folder)


def conv_model(size=32) -> LoadedModel:
    """Convolutions only (no ReLU, no pooling): a unit's input gradient is non-zero on its whole field."""
    torch.manual_seed(1)
    module = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 6, 3, 1, 1), nn.Conv2d(6, 5, 5, 2, 0)).eval()
    with torch.no_grad():
        for m in module:
            m.weight.abs_().add_(0.01)
    return LoadedModel("conv", "conv", module, Preprocess(input_size=size, crop_pct=1.0))


def brute_force(loaded, paths, layer, k=9):
    """Every image's whole map, then per channel: the k images with the largest maximum."""
    maxima, units = [], []
    with Capturer(loaded.module, [layer]) as cap:
        for path in paths:
            out = cap(loaded.preprocess.to_tensor(load_image(path).rgb)).output(layer)[0]
            flat = out.reshape(out.shape[0], -1)
            best, where = flat.max(1)
            maxima.append(best.numpy())
            w = out.shape[-1] if out.dim() == 3 else 1
            units.append(np.stack([where.numpy() // w, where.numpy() % w], -1))
    maxima, units = np.stack(maxima, 1), np.stack(units, 1)  # (C, N), (C, N, 2)
    order = np.argsort(-maxima, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(maxima, order, 1), order, np.take_along_axis(units, order[..., None], 1)


@pytest.mark.parametrize("layer", ["features.2", "features.4.block.0", "classifier.0"])
def test_running_top9_equals_brute_force(tmp_path, layer):
    loaded = tiny_model(48)
    folder = photos(tmp_path / "p")
    (tmp_path / "p" / "notes.txt").write_text("not a photo")
    top = tp.scan_top(loaded, folder, layer, batch_size=4, workers=0)  # 13 images: 4 batches, merged
    paths = list(top.paths)
    assert len(paths) == 13 and [os.path.basename(p) for p, _ in top.skipped] == ["notes.txt"]
    values, images, units = brute_force(loaded, paths, layer)
    assert top.values.shape == values.shape == (top.channels, 9)
    np.testing.assert_array_equal(top.images, images)
    np.testing.assert_allclose(top.values, values, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(top.units, units)
    assert (np.diff(top.values, axis=1) <= 0).all()


def test_fewer_images_than_k_leave_empty_ranks(tmp_path):
    loaded = tiny_model(48)
    top = tp.scan_top(loaded, photos(tmp_path / "p", count=4), "features.1", workers=0)
    assert (top.images[:, 4:] == -1).all() and np.isneginf(top.values[:, 4:]).all()
    assert len(tp.crop_patches(top, 0, loaded.preprocess)) == 4


def test_crop_is_the_argmax_units_field_by_layer_table_and_input_gradient(tmp_path):
    loaded = conv_model(32)
    folder = photos(tmp_path / "p", count=6, size=(64, 64))  # photos at twice the input size
    rows = layer_table(loaded.module, (3, 32, 32))
    layer = "2"
    row = next(r for r in rows if r.name == layer)
    result = get_task("where.top_patches:top_patches_task")(
        TaskInputs(args={"folder": folder, "layer": layer, "channel": 3}, model=loaded, rows=tuple(rows)))
    assert result.rf == tuple(row.rf) and len(result.patches) == 6
    for patch in result.patches:
        (y, x) = patch.unit
        # the layer table's arithmetic, by hand: centre = start + i·jump, box = centre ± (rf − 1)/2, clipped
        want = []
        for i, size, jump, start in zip((y, x), row.rf, row.jump, row.start):
            centre = start + i * jump
            want += [max(0, math.ceil(centre - (size - 1) / 2)), min(31, math.floor(centre + (size - 1) / 2))]
        assert patch.input_box == tuple(want)
        # the input gradient of that unit is non-zero exactly on that box
        rgb = load_image(patch.path).rgb
        x_in = loaded.preprocess.to_tensor(rgb).requires_grad_(True)
        out = loaded.module(x_in)
        assert float(out[0, 3, y, x].detach()) == pytest.approx(patch.value, rel=1e-5)
        assert float(out[0, 3].max().detach()) == pytest.approx(patch.value, rel=1e-5)  # it is the argmax unit
        (grad,) = torch.autograd.grad(out[0, 3, y, x], x_in)
        rows_hit = np.flatnonzero(grad[0].abs().sum((0, 2)).numpy())
        cols_hit = np.flatnonzero(grad[0].abs().sum((0, 1)).numpy())
        assert (rows_hit[0], rows_hit[-1], cols_hit[0], cols_hit[-1]) == patch.input_box
        # on the 64×64 photo (crop_pct 1: the whole photo, scaled by 2) the patch is those pixels ×2
        t, b, l, r = patch.input_box
        assert patch.photo_box == (2 * l, 2 * t, 2 * (r + 1), 2 * (b + 1))
        np.testing.assert_array_equal(patch.rgb, rgb[2 * t:2 * (b + 1), 2 * l:2 * (r + 1)])


def test_photo_box_follows_the_centre_crop():
    pp = Preprocess(input_size=32, crop_pct=0.5)
    # a 200×100 photo: the crop is the centre 50×50 square (left 75, top 25), 50/32 photo pixels per input pixel
    assert tp.photo_box(pp, (200, 100), (0, 31, 0, 31)) == (75, 25, 125, 75)
    assert tp.photo_box(pp, (200, 100), (0, 0, 31, 31)) == (75 + math.floor(31 * 50 / 32), 25, 125, 25 + math.ceil(50 / 32))


def test_task_result_is_plain_data(tmp_path):
    loaded = tiny_model(48)
    result = tp.top_patches_task.task(TaskInputs(args={"folder": photos(tmp_path / "p", count=5), "layer": "features.3",
                                                       "channel": 2}, model=loaded))
    for patch in result.patches:
        assert patch.rgb.dtype == np.uint8 and patch.rgb.ndim == 3 and os.path.isfile(patch.path)
    assert not any(isinstance(v, torch.Tensor) for v in vars(result.top).values())
    assert tp.top_patches_task.task.name == "where.top_patches:top_patches_task"


def test_cached_per_model_folder_and_layer(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVVIZ_FEATURE_CACHE", "1")
    monkeypatch.setenv("CONVVIZ_CACHE_DIR", str(tmp_path / "cache"))
    loaded = tiny_model(48)
    folder = photos(tmp_path / "p", count=6)
    first = tp.scan_top(loaded, folder, "features.2", workers=0)
    assert not first.cached
    files = os.listdir(tmp_path / "cache" / "top_patches")
    assert len(files) == 1 and files[0].endswith(".npz")
    with np.load(tmp_path / "cache" / "top_patches" / files[0], allow_pickle=False) as data:
        assert data["values"].shape == first.values.shape
    monkeypatch.setattr(tp, "_MEMO", {})  # from disk, not from this process's memo
    again = tp.scan_top(loaded, folder, "features.2", workers=0)
    assert again.cached and again.paths == first.paths
    np.testing.assert_array_equal(again.values, first.values)
    np.testing.assert_array_equal(again.units, first.units)
    assert not tp.scan_top(loaded, folder, "features.3", workers=0).cached  # another layer
    photos(tmp_path / "p", count=7)  # one more photo: the folder changed
    assert not tp.scan_top(loaded, folder, "features.2", workers=0).cached
    with torch.no_grad():
        loaded.module.features[0][0].weight.mul_(1.5)  # other weights
    assert not tp.scan_top(loaded, folder, "features.2", workers=0).cached


def test_cancel_stops_within_one_batch(tmp_path):
    loaded = tiny_model(48)
    folder = photos(tmp_path / "p", count=13)
    reports = []
    state = TaskState(reports.append, lambda: any(r.fraction and r.fraction > 0 for r in reports))
    with pytest.raises(Cancelled):
        tp.scan_top(loaded, folder, "features.2", batch_size=4, state=state, workers=0)
    assert [r.fraction for r in reports if r.fraction] == [4 / 13]


def test_bad_input_is_one_sentence(tmp_path):
    loaded = tiny_model(48)
    run = tp.top_patches_task.task
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match=r"^empty: the folder is empty"):
        run(TaskInputs(args={"folder": str(tmp_path / "empty"), "layer": "features.2"}, model=loaded))
    (tmp_path / "text").mkdir()
    for name in ("a.txt", "b.csv"):
        (tmp_path / "text" / name).write_text("1,2,3")
    with pytest.raises(ImageError, match=r"^text: none of its 2 files is an image convviz can read \(a.txt: not an image\)$"):
        run(TaskInputs(args={"folder": str(tmp_path / "text"), "layer": "features.2"}, model=loaded))
    folder = photos(tmp_path / "p", count=3)
    with pytest.raises(ValueError, match=r"^channel 24 is out of range: features.2 has 24 channels \(0–23\)$"):
        run(TaskInputs(args={"folder": folder, "layer": "features.2", "channel": 24}, model=loaded))
    with pytest.raises(ValueError, match=r"^no layer named 'features.99' in this model; did you mean"):
        run(TaskInputs(args={"folder": folder, "layer": "features.99"}, model=loaded))
    with pytest.raises(ImageError, match="no such folder"):
        run(TaskInputs(args={"folder": str(tmp_path / "nowhere"), "layer": "features.2"}, model=loaded))


def test_on_the_shared_cats_and_dogs(lite0_model):
    if not os.path.isdir(CATS_DOGS):  # CI always has ../shared: there a missing folder is a failure, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("../shared/data/cats-dogs-60 is not here")
    loaded = lite0_model
    result = tp.top_patches_task.task(TaskInputs(args={"folder": CATS_DOGS, "layer": "blocks.2", "channel": 5},
                                                 model=loaded))
    assert len(result.top.paths) == 60 and [os.path.basename(p) for p, _ in result.top.skipped] == ["README.md"]
    assert len(result.patches) == 9 and len({p.path for p in result.patches}) == 9
    best = result.patches[0]
    with torch.no_grad():  # the value is the unit's activation on the photo decoded in full, as the app shows it
        out = Capturer(loaded.module, ["blocks.2"])(loaded.preprocess.to_tensor(load_image(best.path).rgb)).output("blocks.2")
    assert float(out[0, 5].max()) == pytest.approx(best.value, rel=1e-3)
    assert float(out[0, 5, best.unit[0], best.unit[1]]) == pytest.approx(best.value, rel=1e-3)


@pytest.fixture(scope="module")
def lite0_model():
    from convviz.core.model.loading import load_model

    return load_model("default")
