"""Views of the Layers panel beyond the mosaic: a layer whose output is a vector (or 1×1 maps).

Global pooling leaves one number per channel and the classifier one logit per class; tiles
of 1×1 would all look alike, so these layers are shown as a bar chart. When the vector is
the model's output, every entry gets its class name, its softmax probability and its rank.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .views import ViewContext, view


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
    probs: np.ndarray | None = None  #: softmax of the logits (same condition)

    @property
    def is_logits(self) -> bool:
        return self.labels is not None


@view("vector")
def layer_vector(ctx: ViewContext) -> LayerVector:
    """The layer's output as a vector; if it is the model's output, with class names and probabilities."""
    out = ctx.output()
    shape = tuple(int(n) for n in out.shape)
    if not is_vector_shape(shape):
        raise ValueError(f"{ctx.layer}: output {shape} has a spatial map; use the mosaic")
    values = np.ascontiguousarray(out.reshape(-1), dtype=np.float32)
    logits = ctx.capture.logits.detach().float().reshape(-1).cpu().numpy()
    labels = probs = None
    if logits.shape == values.shape and np.array_equal(logits, values):
        labels = tuple(ctx.model.label_names(len(values)))
        shifted = np.exp(values.astype(np.float64) - values.max())
        probs = (shifted / shifted.sum()).astype(np.float32)
    return LayerVector(layer=ctx.layer, shape=shape, values=values, ranks=descending_ranks(values),
                       labels=labels, probs=probs)
