"""Views of the Layers panel beyond the mosaic: a layer whose output is a vector (or 1×1 maps).

Global pooling leaves one number per channel and the classifier one logit per class; tiles
of 1×1 would all look alike, so these layers are shown as a bar chart. When the vector is
the model's output, every entry gets its class name, the model's probability for it and its
rank in the prediction: the same numbers as the Predictions view (``ViewContext.class_scores``,
which averages with the mirror image for a model that predicts so).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .registry import ViewContext, view


def is_vector_shape(shape) -> bool:
    """True for (N,) and (C, 1, 1) outputs: one number per channel or class."""
    shape = tuple(shape)
    return len(shape) == 1 or (len(shape) == 3 and shape[1:] == (1, 1))


def descending_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each entry, 1 for the largest (ties: the lower index first)."""
    order = np.argsort(-np.asarray(values), kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


@dataclass(frozen=True)
class LayerVector:
    """One number per channel (or class) of a layer, with ranks; class names for the logits."""

    layer: str
    shape: tuple[int, ...]
    values: np.ndarray  #: (N,) float32
    ranks: np.ndarray  #: (N,) 1 = largest
    labels: tuple[str, ...] | None = None  #: class names when ``values`` are the model's logits
    probs: np.ndarray | None = None  #: the model's probabilities (same condition; ``ranks`` then follow them)
    mirrored: bool = False  #: ``probs`` average the image and its mirror image (``LoadedModel.mirror``)
    #: a multi-layer head's input (core.model.taps.head_parts): (name, width) of each part, in order
    parts: tuple[tuple[str, int], ...] = ()

    @property
    def is_logits(self) -> bool:
        return self.labels is not None

    def entry_name(self, index: int) -> str:
        """``channel 7``, or in a multi-layer head's input ``blocks.4 log std 7`` (the channel within its part)."""
        start = 0
        for name, width in self.parts:
            if index < start + width:
                return f"{name} {index - start}"
            start += width
        return f"channel {index}"

    @property
    def what(self) -> str:
        """What the values are, in words: ``logits, one per class``, ``values, one per channel``, or a
        multi-layer head's parts (``values: bn2 mean 1280 · blocks.4 mean 112 · …``)."""
        if self.is_logits:
            return "logits, one per class"
        if self.parts:
            return "values: " + " · ".join(f"{name} {width}" for name, width in self.parts)
        return "values, one per channel"


@view("vector")
def layer_vector(ctx: ViewContext) -> LayerVector:
    """The layer's output as a vector; if it is the model's output, with class names and the model's
    probabilities (:meth:`ViewContext.class_scores`, as the Predictions view shows them)."""
    from ..model.loading import class_probabilities
    from ..model.taps import head_parts

    out = ctx.output()
    shape = tuple(int(n) for n in out.shape)
    if not is_vector_shape(shape):
        raise ValueError(f"{ctx.layer}: output {shape} has a spatial map; use the mosaic")
    values = np.ascontiguousarray(out.reshape(-1), dtype=np.float32)
    logits = ctx.capture.logits[:1].detach().float().reshape(-1).cpu().numpy()
    if not (logits.shape == values.shape and np.array_equal(logits, values)):
        parts = head_parts(ctx.model.module) if ctx.layer == "global_pool" else ()
        return LayerVector(layer=ctx.layer, shape=shape, values=values, ranks=descending_ranks(values),
                           parts=parts if sum(width for _, width in parts) == len(values) else ())
    scores = ctx.class_scores().reshape(-1)
    probs = class_probabilities(scores).cpu().numpy()  # ranked by the scores: no ties where probabilities underflow
    return LayerVector(layer=ctx.layer, shape=shape, values=values, ranks=descending_ranks(scores.float().cpu().numpy()),
                       labels=tuple(ctx.model.label_names(len(values))), probs=probs, mirrored=bool(ctx.model.mirror))
