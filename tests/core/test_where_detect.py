"""Detection both ways on real photos (the cat and the coffee side by side), the windows, NMS against
torchvision, the coarse segmentation, and the tasks' progress and cancelling."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from convviz.core.images import load_image
from convviz.core.model.loading import load_model
from convviz.core.tasks import Cancelled, TaskInputs, TaskState, get_task
from convviz.core.where import dense, windows
from convviz.core.where.boxes import Box, best_of, merge
from convviz.core.where.classes import resolve_class, resolve_classes

CAT = (281, 282, 285)  # tabby, tiger cat, Egyptian cat
COFFEE = (967, 968, 504)  # espresso, cup, coffee mug
HALF = 450  # the composite: cat.jpg's left 450 columns | coffee.jpg at 450×300


@pytest.fixture(scope="module")
def bundled():
    return load_model("default")


@pytest.fixture(scope="module")
def composite():
    from convviz.ui.settings import sample_path

    cat = load_image(sample_path("cat")).rgb  # 451×300
    coffee = load_image(sample_path("coffee")).rgb  # 600×400
    coffee = np.asarray(Image.fromarray(coffee).resize((HALF, 300), Image.BICUBIC))
    return np.concatenate([cat[:, :HALF], coffee], 1)


@pytest.fixture(scope="module")
def dense_result(bundled, composite):
    return dense.dense_maps(bundled, composite, 448)


@pytest.fixture(scope="module")
def window_result(bundled, composite):
    return windows.classify_windows(bundled, composite)


def on_half(box: Box, left: bool) -> bool:
    """The box's centre is on that half and at least 80% of its area too."""
    x0, x1 = (box.x0, min(box.x1, HALF)) if left else (max(box.x0, HALF), box.x1)
    inside = max(0.0, x1 - x0) / (box.x1 - box.x0)
    return (box.centre[0] < HALF) == left and inside >= 0.8


@pytest.mark.parametrize("method", ["dense", "windows"])
def test_cat_box_on_the_cat_half_and_coffee_box_on_the_coffee_half(method, dense_result, window_result):
    boxes = dense.dense_boxes(dense_result) if method == "dense" else windows.crop_boxes(window_result)
    cat, coffee = best_of(boxes, CAT), best_of(boxes, COFFEE)
    assert cat is not None and coffee is not None, [b.as_json() for b in boxes]
    assert on_half(cat, left=True), cat
    assert on_half(coffee, left=False), coffee
    assert cat.score >= 0.5 and coffee.score >= 0.5
    # asked for those classes only, the same boxes come back
    only = dense.dense_boxes(dense_result, CAT + COFFEE) if method == "dense" else windows.crop_boxes(window_result, CAT + COFFEE)
    assert {b.index for b in only} <= set(CAT + COFFEE) and best_of(only, CAT) == cat and best_of(only, COFFEE) == coffee


def test_dense_map_geometry_on_the_composite(dense_result):
    assert dense_result.frame.input_hw == (259, 776) and dense_result.shape == (9, 25)
    assert dense_result.grid.rf == (851, 851) and dense_result.grid.jump == (32, 32)
    assert not dense_result.exact and "851 px" in dense_result.caption()


def test_segmentation_labels_each_half_with_its_object(dense_result):
    seg = dense.segment(dense_result, CAT + COFFEE[:1], background=0.3)
    assert seg.label_map.shape == (300, 900) and seg.labels[:3] == ("tabby", "tiger cat", "Egyptian cat")
    left, right = seg.label_map[:, :HALF], seg.label_map[:, HALF:]
    assert np.isin(left[left >= 0], [0, 1, 2]).mean() > 0.95 and (left >= 0).mean() > 0.4
    assert (right[right >= 0] == 3).mean() > 0.95 and (right >= 0).mean() > 0.15
    assert sum(seg.fractions) == pytest.approx((seg.label_map >= 0).mean())
    from convviz.core.where.frame import to_photo  # the rule: coloured where the picked classes together reach it

    up = to_photo(dense_result.probs[list(CAT + COFFEE[:1])], dense_result.grid, dense_result.frame, (300, 900))
    np.testing.assert_array_equal(seg.label_map >= 0, up.sum(0) >= 0.3)
    np.testing.assert_array_equal(seg.label_map[seg.label_map >= 0], up.argmax(0)[seg.label_map >= 0])
    everything = dense.segment(dense_result, CAT + COFFEE[:1], background=0.0)
    assert (everything.label_map >= 0).all()
    nothing = dense.segment(dense_result, CAT, background=1.01)
    assert (nothing.label_map == -1).all()
    assert dense.top_classes(dense_result, 2) == (285, 967)  # Egyptian cat, espresso: the most probability mass
    text = dense.coarseness_text(dense_result)
    assert "one score every 32 input px" in text and "stride-16 and stride-8" in text


def test_windows_cover_the_photo_at_every_size():
    boxes = windows.window_boxes((300, 900), (0.5, 1.0), 0.5)
    for side in (150, 300):
        level = boxes[boxes[:, 2] - boxes[:, 0] == side]
        covered = np.zeros((300, 900), bool)
        for x0, y0, x1, y1 in level:
            assert y1 - y0 == side and 0 <= x0 and x1 <= 900 and 0 <= y0 and y1 <= 300
            covered[y0:y1, x0:x1] = True
        assert covered.all()
    assert len(boxes) == 3 * 11 + 1 * 5  # 150 px every 75 px: 3 rows × 11 columns; 300 px every 150: 5
    with pytest.raises(ValueError, match="fractions of the photo's shorter side"):
        windows.window_boxes((300, 900), (0.0,))


def test_each_window_is_classified_as_the_photo_crop_would_be(bundled, composite, window_result):
    pre = bundled.preprocess
    for k in (0, len(window_result.windows) // 2, len(window_result.windows) - 1):
        x0, y0, x1, y1 = window_result.windows[k]
        crop = Image.fromarray(composite[y0:y1, x0:x1]).resize((pre.input_size,) * 2, Image.BICUBIC)
        arr = (np.asarray(crop, np.float32) / 255 - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
        with torch.no_grad():
            probs = torch.softmax(bundled.module(torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]), 1)[0].numpy()
        np.testing.assert_allclose(window_result.probs[k], probs, atol=1e-5)


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """NMS written out: take the best, drop what overlaps it by more than ``iou``, repeat."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        best = order.pop(0)
        keep.append(best)
        rest = []
        for other in order:
            ix = max(0.0, min(boxes[best, 2], boxes[other, 2]) - max(boxes[best, 0], boxes[other, 0]))
            iy = max(0.0, min(boxes[best, 3], boxes[other, 3]) - max(boxes[best, 1], boxes[other, 1]))
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            inter = ix * iy
            if inter / (area(boxes[best]) + area(boxes[other]) - inter) <= iou:
                rest.append(other)
        order = rest
    return keep


def test_merge_is_per_class_nms_as_torchvision_does_it():
    from torchvision.ops import nms

    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 200, (60, 2))
    coords = np.concatenate([xy, xy + rng.uniform(10, 80, (60, 2))], 1)
    scores = rng.uniform(0, 1, 60)
    classes = rng.integers(0, 3, 60)
    boxes = [Box(*map(float, c), int(k), f"c{k}", float(s)) for c, k, s in zip(coords, classes, scores)]
    for iou in (0.1, 0.3, 0.5):
        kept = merge(boxes, iou)
        assert [b.score for b in kept] == sorted((b.score for b in kept), reverse=True)
        for k in range(3):
            mine = sorted(boxes.index(b) for b in kept if b.index == k)
            idx = np.flatnonzero(classes == k)
            theirs = nms(torch.tensor(coords[idx]), torch.tensor(scores[idx]), iou).numpy()
            assert mine == sorted(idx[theirs].tolist()) == sorted(idx[greedy_nms(coords[idx], scores[idx], iou)].tolist())
        assert len(kept) < len(boxes)


def test_class_names_and_indices(bundled):
    labels = bundled.label_names(1000)
    assert resolve_class("Tiger Cat", labels) == 282 and resolve_class("282", labels) == 282
    assert resolve_classes("tabby, espresso,967", labels) == (281, 967)
    with pytest.raises(ValueError, match=r"class 1000 is out of range: this model has 1000 classes \(0–999\)"):
        resolve_class(1000, labels)
    with pytest.raises(ValueError, match="matches .* classes"):
        resolve_class("cat", labels)


def test_tasks_report_progress_and_stop_between_batches(bundled, composite):
    reports = []
    result = get_task("where.windows:windows_task")(
        TaskInputs(args={"sizes": (1.0,), "batch": 2}, model=bundled, rgb=composite), TaskState(reports.append))
    assert len(result.windows) == 5 and [r.fraction for r in reports] == [0.0, 2 / 5, 4 / 5, 1.0]
    stops = []

    def should_stop():
        stops.append(1)
        return len(stops) > 2

    with pytest.raises(Cancelled):
        get_task("where.windows:windows_task")(TaskInputs(args={"sizes": (0.5, 1.0), "batch": 2}, model=bundled,
                                                          rgb=composite), TaskState(reports.append, should_stop))
    assert len(stops) == 3  # the third batch never ran
    maps = get_task("where.dense:dense_task")(TaskInputs(args={"size": 224}, model=bundled, rgb=composite), TaskState())
    assert isinstance(maps, dense.DenseMaps) and maps.shape == (5, 13)
    for f in dataclasses.fields(maps):
        assert not isinstance(getattr(maps, f.name), torch.Tensor)
