"""All channels of a layer as one image: a near-square grid of tiles (numpy only)."""
from __future__ import annotations

import math

import numpy as np


def grid_shape(channels: int, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, cols) for ``channels`` tiles, close to square on screen."""
    cols = max(1, math.ceil(math.sqrt(channels * aspect)))
    return math.ceil(channels / cols), cols


def channel_mosaic(maps: np.ndarray, gap: int = 1, per_channel: bool = True) -> np.ndarray:
    """(C, H, W) activations → (rows·(H+gap)−gap, cols·(W+gap)−gap) float32 in [0, 1], NaN gaps.

    Each tile is scaled to its own min..max (``per_channel``) or to the layer's range.
    A 1-D (C,) vector is shown as C 1×1 tiles.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 1:
        maps = maps[:, None, None]
    if maps.ndim != 3:
        raise ValueError(f"expected (C, H, W) activations, got shape {maps.shape}")
    c, h, w = maps.shape
    axes = (1, 2) if per_channel else (0, 1, 2)
    lo = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - lo
    scaled = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0.0).astype(np.float32)
    rows, cols = grid_shape(c, h / max(w, 1))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = scaled[k]
    return out


def tile_origin(index: int, channels: int, tile_hw: tuple[int, int], gap: int = 1) -> tuple[int, int]:
    """(row, col) pixel of tile ``index``'s top-left corner in :func:`channel_mosaic`'s output."""
    h, w = tile_hw
    _, cols = grid_shape(channels, h / max(w, 1))
    r, q = divmod(index, cols)
    return r * (h + gap), q * (w + gap)


#: colour index of a gap between tiles (and of a NaN value) in the 8-bit mosaic the Layers panel draws
#: (:func:`~convviz.core.views.mosaic_layout.tile_indices`; transparent in :func:`indexed_lut`)
GAP_INDEX = 255


def indexed_lut(colormap: np.ndarray) -> np.ndarray:
    """(256, 3) colormap → (256, 4) RGBA table for the 8-bit mosaic (``round(x·254)``, gaps :data:`GAP_INDEX`): 255 colours over the colormap's
    whole range (index i shows colormap entry round(i·255/254)), then a transparent gap."""
    colors = np.asarray(colormap, dtype=np.uint8)[np.rint(np.arange(255) * 255 / 254).astype(np.intp)]
    table = np.zeros((256, 4), dtype=np.uint8)
    table[:GAP_INDEX, :3], table[:GAP_INDEX, 3] = colors, 255
    return table


def to_rgb8(mosaic: np.ndarray, colormap: np.ndarray | None = None, gap_value: int = 255) -> np.ndarray:
    """[0, 1] mosaic → (H, W, 3) uint8 through a (256, 3) lookup table (grey if None)."""
    lut = colormap if colormap is not None else np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    idx = np.nan_to_num(mosaic, nan=0.0)
    rgb = lut[np.clip((idx * 255).round().astype(np.int32), 0, 255)]
    rgb[np.isnan(mosaic)] = gap_value
    return rgb
