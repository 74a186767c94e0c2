"""The views every panel started with: top-k predictions, a layer's channel mosaic, a real Conv2d."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..capture.activations import predict_top
from ..geometry.conv_probe import conv_layer_data
from .mosaic import channel_mosaic
from .registry import ViewContext, view


@dataclass(frozen=True)
class Predictions:
    """Top-k classes (``{"label", "index", "prob"}``) and the forward time that produced them."""

    top: tuple
    forward_ms: float


@dataclass(frozen=True)
class LayerMosaic:
    """All channels of one layer, their per-channel statistics, and (made on first use) the tiled image.

    The Layers panel tiles ``maps`` itself for its pane, so the view leaves :attr:`mosaic` to whoever
    reads it: the first maps of a new image reach the screen sooner.
    """

    layer: str
    shape: tuple[int, ...]
    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    tile_hw: tuple[int, int]
    gap: int = 1
    maps: np.ndarray | None = None  #: the raw (C, H, W) values (a vector as (C, 1, 1)), float32

    @cached_property
    def mosaic(self) -> np.ndarray:
        """Every channel in one near-square grid, each scaled to its own min…max, NaN gaps
        (:func:`~convviz.core.views.mosaic.channel_mosaic`)."""
        return channel_mosaic(self.maps, gap=self.gap)


@view("predictions")
def predictions(ctx: ViewContext, k: int = 5) -> Predictions:
    """Top-``k`` classes of the model's prediction (:meth:`ViewContext.class_scores`: for a model that
    predicts from the image and its mirror image, of both)."""
    scores = ctx.class_scores()
    labels = ctx.model.label_names(int(scores.shape[-1]))
    return Predictions(tuple(predict_top(scores, labels, k)), ctx.forward_ms)


@view("mosaic")
def layer_mosaic(ctx: ViewContext, gap: int = 1) -> LayerMosaic:
    """Every channel of ``ctx.layer`` in one mosaic (a vector becomes 1×1 tiles)."""
    maps = ctx.output()
    shape = tuple(int(n) for n in maps.shape)
    if maps.ndim == 1:
        maps = maps[:, None, None]
    if maps.ndim != 3:
        raise ValueError(f"{ctx.layer}: output shape {shape} is not (channels, height, width); no mosaic")
    return LayerMosaic(
        layer=ctx.layer, shape=shape, minimum=maps.min(axis=(1, 2)), maximum=maps.max(axis=(1, 2)),
        mean=maps.mean(axis=(1, 2)), tile_hw=(int(maps.shape[1]), int(maps.shape[2])), gap=gap, maps=maps,
    )


@view("conv")
def conv_layer(ctx: ViewContext):
    """Input, output and weights of a real Conv2d (:class:`~convviz.core.geometry.conv_probe.ConvLayerData`)."""
    name = ctx.require_layer()
    if ctx.module is None or name not in ctx.capture.inputs:
        raise ValueError(f"{name}: not a convolution of this model")
    row = ctx.row
    size = int(ctx.model.preprocess.input_size)
    field = dict(rf=row.rf, jump=row.jump, start=row.start, image_hw=(size, size)) if row is not None else {}
    return conv_layer_data(ctx.module, name, ctx.capture.inputs[name], ctx.capture.outputs[name], **field)
