"""Detection by crop and classify (the R-CNN idea, with sliding windows for proposals).

Square windows at a few sizes (fractions of the photo's shorter side) slide over the photo with
half a window's overlap; each crop becomes a model input exactly as a photo does
(:meth:`Preprocess.to_tensor` of the square crop) and is classified in batches; every (window,
class) whose probability reaches the threshold is a box, and overlapping boxes of a class are
merged by non-maximum suppression (:func:`.boxes.merge`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..tasks import Need, Scope, TaskInputs, TaskState, task
from .boxes import Box, merge

#: Window sides as fractions of the photo's shorter side.
SIZES = (0.5, 0.75, 1.0)
#: Step between windows as a fraction of the window side.
STEP = 0.5
THRESHOLD = 0.3
BATCH = 16


@dataclass(frozen=True)
class WindowScores:
    """Every window's class probabilities (plain data)."""

    windows: np.ndarray  #: (n, 4) int photo-pixel edges x0, y0, x1, y1
    probs: np.ndarray  #: (n, classes) float32
    labels: tuple[str, ...]
    photo_hw: tuple[int, int]
    seconds: float

    def caption(self) -> str:
        sides = sorted({int(w[2] - w[0]) for w in self.windows})
        return (f"{len(self.windows)} crops ({', '.join(map(str, sides))} px windows, half-overlapping), each resized "
                f"and classified on its own in {self.seconds:.2f} s.")


def window_boxes(photo_hw: tuple[int, int], sizes=SIZES, step: float = STEP) -> np.ndarray:
    """(n, 4) int windows: squares of ``sizes`` × the shorter side, every ``step`` × side, the last of
    each row and column flush with the photo's edge."""
    height, width = photo_hw
    if not sizes or any(not 0 < s <= 1 for s in sizes):
        raise ValueError("window sizes must be fractions of the photo's shorter side, above 0 and at most 1")
    if not 0 < step <= 1:
        raise ValueError("the window step must be a fraction of the window, above 0 and at most 1")
    out = []
    for fraction in sorted(set(sizes)):
        side = max(1, round(min(height, width) * fraction))
        stride = max(1, round(side * step))
        for y in _starts(height, side, stride):
            for x in _starts(width, side, stride):
                out.append((x, y, x + side, y + side))
    return np.array(out, np.int64).reshape(-1, 4)


def _starts(length: int, side: int, stride: int) -> list[int]:
    starts = list(range(0, length - side + 1, stride))
    if starts[-1] != length - side:
        starts.append(length - side)
    return starts


def classify_windows(loaded, rgb: np.ndarray, sizes=SIZES, step: float = STEP, batch: int = BATCH,
                     state: TaskState | None = None) -> WindowScores:
    """Class probabilities of every window's crop, classified as the model classifies a photo."""
    started = time.perf_counter()
    windows = window_boxes(rgb.shape[:2], sizes, step)
    pre = dataclasses.replace(loaded.preprocess, crop_pct=1.0)  # a square crop, resized whole
    chunks = []
    for first in range(0, len(windows), batch):
        if state is not None:
            state.check()
            state.progress(first / len(windows), f"classifying crops {first + 1}–{min(first + batch, len(windows))} "
                                                 f"of {len(windows)}")
        x = torch.cat([pre.to_tensor(rgb[y0:y1, x0:x1]) for x0, y0, x1, y1 in windows[first:first + batch]])
        with torch.no_grad():
            chunks.append(loaded.probabilities(x).numpy())
    probs = np.concatenate(chunks)
    return WindowScores(windows, probs, loaded.label_names(probs.shape[1]), tuple(rgb.shape[:2]),
                        time.perf_counter() - started)


def crop_boxes(scores: WindowScores, classes=None, threshold: float = THRESHOLD, iou: float | None = None) -> tuple[Box, ...]:
    """A box for every (window, class) with probability ≥ ``threshold`` (``classes``: indices, None:
    all), merged per class by NMS; best first."""
    probs = scores.probs if classes is None else scores.probs[:, list(classes)]
    index = np.arange(scores.probs.shape[1]) if classes is None else np.asarray(list(classes), int)
    found = [Box(*map(float, scores.windows[w]), int(index[c]), scores.labels[index[c]], float(probs[w, c]))
             for w, c in zip(*np.nonzero(probs >= threshold))]
    return merge(found, iou)


@task(Scope.IMAGE, (Need.MODEL, Need.IMAGE), title="Classifying crops…")
def windows_task(inputs: TaskInputs, state: TaskState) -> WindowScores:
    """args: ``sizes`` (fractions of the shorter side), ``step``, ``batch``."""
    args = inputs.args
    result = classify_windows(inputs.model, inputs.rgb, tuple(args.get("sizes", SIZES)), float(args.get("step", STEP)),
                              int(args.get("batch", BATCH)), state)
    state.progress(1.0, f"{len(result.windows)} crops in {result.seconds:.2f} s")
    return result
