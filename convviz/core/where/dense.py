"""Detection and segmentation with the classifier made fully convolutional (OverFeat, FCN).

The whole photo, resized to about ``size × size`` pixels (aspect kept), goes through the network
once; the head, as 1×1 convolutions (:mod:`.fcn`), turns the last feature map into a grid of class
scores: one per window position, the window being that layer's receptive field and the step its
total stride. Regions of a class above a threshold become boxes (:func:`dense_boxes`); the maps
resampled to the photo and coloured by the winning class are a coarse segmentation (:func:`segment`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import first_line
from ..geometry.padding import is_dynamic_same
from ..model.loading import mirror_scores
from ..tasks import Need, Scope, TaskInputs, TaskState, task
from .boxes import Box, clip, merge, view_hw
from .frame import Frame, Grid, layer_grid, mask_boxes, mean_side, to_photo, whole_frame
from .fcn import Head, dense_logits, find_head

DEFAULT_SIZE = 448
MIN_SIZE, MAX_SIZE = 32, 2048
#: Default class probability a position needs to count (boxes) or to be coloured (segmentation).
THRESHOLD = 0.3


@dataclass(frozen=True)
class DenseMaps:
    """Class probabilities at every position of the last feature map of the whole photo (plain data)."""

    probs: np.ndarray  #: (classes, h, w) float32, softmax over classes at each position
    labels: tuple[str, ...]
    layer: str  #: the feature map the scores are computed on
    grid: Grid  #: its units on the model input: window (rf) and stride (jump)
    frame: Frame  #: the model input (the whole photo, resized) on the photo
    exact: bool  #: True when a score is exactly the classifier's output on its window
    note: str  #: one sentence on that
    #: the pass over this photo (resize, forward, head, softmax); the head search and the grid's trace,
    #: done once per model (and input size), are not counted
    seconds: float

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.probs.shape[1:])

    def caption(self) -> str:
        h, w = self.shape
        iw, ih = self.frame.input_hw[1], self.frame.input_hw[0]
        return (f"One pass over the whole photo at {iw}×{ih} px: {self.layer}'s {h}×{w} positions, each a window of "
                f"{mean_side(self.grid.rf):g} px (its receptive field) every {mean_side(self.grid.jump):g} px (its total "
                f"stride), scored by the head as a 1×1 convolution. {self.note}")


def input_hw(photo_hw: tuple[int, int], size: int) -> tuple[int, int]:
    """The photo resized to about ``size``² pixels, aspect kept (the long side at most 4 × ``size``)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"input size must be from {MIN_SIZE} to {MAX_SIZE} pixels, not {size}")
    height, width = photo_hw
    scale = min(size / math.sqrt(height * width), 4 * size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def photo_tensor(preprocess, rgb: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
    """The whole photo resized to ``hw`` with the model's interpolation and scaling: (1, 3, h, w)."""
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    return torch.from_numpy(preprocess.scale(np.asarray(img.resize((hw[1], hw[0]), preprocess.resample))))[None]


def pads(model: nn.Module) -> bool:
    """True when any convolution or pooling of ``model`` pads its input (TF "SAME" included)."""
    for module in model.modules():
        if isinstance(module, (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            padding = getattr(module, "padding", 0)
            if is_dynamic_same(module) or padding == "same" or any(int(p) for p in np.atleast_1d(padding)):
                return True
    return False


def dense_maps(loaded, rgb: np.ndarray, size: int = DEFAULT_SIZE, state: TaskState | None = None) -> DenseMaps:
    """:class:`DenseMaps` of ``rgb`` at about ``size``² pixels for the classifier ``loaded``."""
    model, pre = loaded.module, loaded.preprocess
    head = find_head(model, pre.input_size, loaded.title)
    hw = input_hw(rgb.shape[:2], size)
    started = time.perf_counter()
    x = photo_tensor(pre, rgb, hw)
    if state is not None:
        state.check()
    try:
        logits = dense_logits(model, head, x)
        scores = torch.log_softmax(logits[0], 0)
        if loaded.mirror:  # the model predicts from the photo and its mirror image: so does every position
            state.check() if state is not None else None
            mirrored = dense_logits(model, head, x.flip(3))[0].flip(2)
            scores = mirror_scores(logits[0].movedim(0, -1), mirrored.movedim(0, -1)).movedim(-1, 0)
    except RuntimeError as exc:
        raise ValueError(f"{loaded.title} cannot take a {hw[1]}×{hw[0]} input ({first_line(exc)})") from None
    probs = torch.softmax(scores, 0).numpy()
    seconds = time.perf_counter() - started
    grid = layer_grid(model, head.maps[0], hw, pre.input_size)
    grid = replace(grid, shape=tuple(probs.shape[1:]))
    exact, note = _exactness(model, head, loaded, grid)
    return DenseMaps(probs, loaded.label_names(probs.shape[0]), head.maps[0], grid, whole_frame(rgb.shape[:2], hw),
                     exact, note, seconds)


def _exactness(model: nn.Module, head: Head, loaded, grid: Grid) -> tuple[bool, str]:
    """Whether each score is exactly the classifier's output on its window, and one sentence on why (not)."""
    window = f"{mean_side(grid.rf):g} px"
    spread = [m for m, k in zip(head.maps, head.kinds) if k == "logstd"]
    finer = list(dict.fromkeys(m for m, k in zip(head.maps[1:], head.kinds[1:]) if k != "logstd"))
    reasons = []
    if loaded.mirror:
        reasons.append("the model averages each photo with its mirror image, so each position averages its window "
                       "with the mirrored one")
    if finer:
        reasons.append(f"the head also reads {', '.join(finer)}, pooled here onto {head.maps[0]}'s grid, not over each window")
    if spread:
        reasons.append(f"it reads the log standard deviation of {' and '.join(spread)} over the whole map, so that share "
                       "of the score is the same at every position")
    if not reasons and pads(model):
        reasons.append(f"the network pads its layers, so a score is close to, not exactly, the classifier's output on its "
                       f"{window} window (a crop would see zeros where the whole photo has pixels)")
    if reasons:
        return False, "Approximate: " + "; ".join(reasons) + "."
    return True, f"Exact: no layer pads, so each score is the classifier's output on its {window} window."


def dense_boxes(maps: DenseMaps, classes=None, threshold: float = THRESHOLD, iou: float | None = None) -> tuple[Box, ...]:
    """Boxes around the connected regions where a class's probability is at least ``threshold``
    (each region's box covers its positions' stride-sized cells; score: its highest probability),
    merged per class by NMS. ``classes``: indices (None: every class that reaches the threshold)."""
    probs = maps.probs
    if classes is None:
        classes = np.flatnonzero(probs.reshape(probs.shape[0], -1).max(1) >= threshold)
    found = []
    for index in classes:
        for rows, cols, region in mask_boxes(probs[index] >= threshold):
            x0, y0, _, _ = maps.grid.cell_edges(rows.start, cols.start)
            _, _, x1, y1 = maps.grid.cell_edges(rows.stop - 1, cols.stop - 1)
            edges = clip(*maps.frame.edges_to_photo(x0, y0, x1, y1), maps.frame.photo_hw)
            score = float(probs[index, rows, cols][region].max())
            found.append(Box(*edges, int(index), maps.labels[index], score))
    return merge(found, iou)


@dataclass(frozen=True)
class Segmentation:
    """Each photo pixel (at view size) labelled with the winning picked class, or background (-1)."""

    classes: tuple[int, ...]
    labels: tuple[str, ...]
    label_map: np.ndarray  #: (Hv, Wv) int16: position in ``classes``, -1 for background
    fractions: tuple[float, ...]  #: share of the photo each class covers
    background: float  #: the probability the picked classes together need at a pixel


def top_classes(maps: DenseMaps, count: int = 4) -> tuple[int, ...]:
    """The classes with the most probability summed over all positions (the segmentation's default)."""
    mass = maps.probs.reshape(maps.probs.shape[0], -1).sum(1)
    return tuple(int(i) for i in np.argsort(-mass, kind="stable")[:count])


def segment(maps: DenseMaps, classes=None, background: float = THRESHOLD, out_hw=None) -> Segmentation:
    """The probability maps of ``classes`` (default :func:`top_classes`) resampled to the photo; each
    pixel takes the class with the highest, or background where together they have less than ``background``."""
    classes = tuple(int(c) for c in (top_classes(maps) if classes is None else classes))
    out_hw = out_hw or view_hw(maps.frame.photo_hw)
    if not classes:
        return Segmentation((), (), np.full(out_hw, -1, np.int16), (), background)
    up = to_photo(maps.probs[list(classes)], maps.grid, maps.frame, out_hw)
    label_map = np.where(up.sum(0) >= background, up.argmax(0), -1).astype(np.int16)
    fractions = tuple(float((label_map == k).mean()) for k in range(len(classes)))
    return Segmentation(classes, tuple(maps.labels[c] for c in classes), label_map, fractions, background)


def coarseness_text(maps: DenseMaps) -> str:
    """Why the segmentation is coarse and how FCN sharpens it, with this network's numbers."""
    jump = mean_side(maps.grid.jump)
    photo = jump * mean_side((maps.frame.sy, maps.frame.sx))
    return (f"Coarse by construction: one score every {jump:g} input px ({photo:.0f} photo px, {maps.layer}'s total "
            f"stride), blended between cell centres. FCN (Long et al., 2015) sharpens it with skip connections: "
            f"scores from the stride-{jump / 2:g} and stride-{jump / 4:g} layers added in, their 1×1 scorers trained on "
            f"per-pixel labels, which a classifier never had.")


@task(Scope.IMAGE, (Need.MODEL, Need.IMAGE), title="Scoring every window in one pass…")
def dense_task(inputs: TaskInputs, state: TaskState) -> DenseMaps:
    """args: ``size`` (about size² input pixels, default 448)."""
    size = int(inputs.args.get("size", DEFAULT_SIZE))
    state.progress(0.0, f"one pass over the whole photo at about {size}² px")
    result = dense_maps(inputs.model, inputs.rgb, size, state)
    state.check()
    state.progress(1.0, f"{result.shape[0]}×{result.shape[1]} positions in {result.seconds:.2f} s")
    return result
