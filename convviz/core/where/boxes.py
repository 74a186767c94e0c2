"""Labelled boxes on the photo and how overlapping ones are merged (non-maximum suppression);
the size photo-sized maps are carried at. Torch-free at import (the app's panel reads it before torch)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Boxes of one class overlapping more than this (intersection over union) are merged.
NMS_IOU = 0.3
#: Longest side of the photo-sized maps a result carries (the photo itself may be far larger).
VIEW_SIDE = 1024


def view_hw(photo_hw: tuple[int, int], side: int = VIEW_SIDE) -> tuple[int, int]:
    """The size photo-sized maps are carried at: the photo's, scaled down to ``side`` at most."""
    height, width = photo_hw
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass(frozen=True)
class Box:
    """A scored, labelled box in photo-pixel edges (x0, y0) – (x1, y1)."""

    x0: float
    y0: float
    x1: float
    y1: float
    index: int
    label: str
    score: float  #: the class probability that made it

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def as_json(self) -> dict:
        return {"label": self.label, "index": self.index, "score": round(self.score, 4),
                "box": [round(v, 1) for v in (self.x0, self.y0, self.x1, self.y1)]}


def clip(x0: float, y0: float, x1: float, y1: float, photo_hw) -> tuple[float, float, float, float]:
    height, width = photo_hw
    return max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)


def merge(boxes, iou: float | None = None) -> tuple[Box, ...]:
    """Per class, keep a box only if no higher-scoring box of its class overlaps it by more than
    ``iou`` (None: :data:`NMS_IOU`; :func:`torchvision.ops.batched_nms`); best first."""
    import torch
    from torchvision.ops import batched_nms

    boxes = list(boxes)
    if not boxes:
        return ()
    coords = torch.tensor([[b.x0, b.y0, b.x1, b.y1] for b in boxes], dtype=torch.float64)
    scores = torch.tensor([b.score for b in boxes], dtype=torch.float64)
    classes = torch.tensor([b.index for b in boxes])
    keep = batched_nms(coords, scores, classes, float(NMS_IOU if iou is None else iou))
    return tuple(boxes[int(k)] for k in keep)


def best_of(boxes, indices) -> Box | None:
    """The highest-scoring box whose class is in ``indices`` (None when there is none)."""
    chosen = [b for b in boxes if b.index in set(indices)]
    return max(chosen, key=lambda b: b.score) if chosen else None


def palette(count: int) -> np.ndarray:
    """``count`` distinct RGB uint8 colours (the same order everywhere: legend, boxes, segments)."""
    base = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
                     [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40], [255, 225, 25]],
                    np.uint8)
    return base[np.arange(count) % len(base)]
