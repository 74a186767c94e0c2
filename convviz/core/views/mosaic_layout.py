"""A layer's channels tiled to fit a pane: column count, channel order and scaling (numpy only).

:func:`columns_for` picks the column count that makes tiles largest in a pane of a given
size; :func:`tile_maps` lays the (C, H, W) maps out in that grid, in any channel order,
each tile scaled to its own min…max or all to the layer's range (so a conv and the
BatchNorm after it look different). Gaps are NaN. :func:`tile_indices` makes the same mosaic
as the 8-bit colour indices the screen draws, in one pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .mosaic import GAP_INDEX

ORDERS = ("index", "mean", "max")  #: channel order: as in the layer, or by mean / max, largest first


def columns_for(channels: int, tile_hw: tuple[int, int], width: float, height: float, gap: int = 1) -> int:
    """Columns that give the largest tiles for ``channels`` tiles of ``tile_hw`` in a width×height pane."""
    if channels <= 0:
        return 1
    h, w = tile_hw
    cols = np.arange(1, channels + 1)
    rows = np.ceil(channels / cols)
    scale = np.minimum(max(width, 1) / (cols * (w + gap) - gap), max(height, 1) / (rows * (h + gap) - gap))
    best = cols[scale >= scale.max() * (1 - 1e-9)]
    return int(best.min())  # fewest columns among equals: fills rows evenly


def channel_order(maps: np.ndarray, order: str = "index") -> np.ndarray:
    """Tile position → channel index (``mean``/``max``: largest first, ties by index)."""
    c = maps.shape[0]
    if order == "index":
        return np.arange(c)
    if order not in ORDERS:
        raise ValueError(f"unknown channel order {order!r}; one of {', '.join(ORDERS)}")
    key = maps.reshape(c, -1).mean(axis=1) if order == "mean" else maps.reshape(c, -1).max(axis=1)
    return np.argsort(-key, kind="stable")


@dataclass(frozen=True)
class MosaicLayout:
    """Where each channel's tile sits, per-channel statistics and how tiles were scaled."""

    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    tile_hw: tuple[int, int]
    gap: int = 1
    cols: int = 1
    order: np.ndarray | None = None  #: tile position → channel (None: index order)
    per_channel: bool = True

    @property
    def channels(self) -> int:
        return int(self.minimum.shape[0])

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the mosaic."""
        return math.ceil(self.channels / self.cols), self.cols

    def channel_at(self, position: int) -> int:
        return int(self.order[position]) if self.order is not None else position

    def position_of(self, channel: int) -> int:
        return int(np.flatnonzero(self.order == channel)[0]) if self.order is not None else channel

    def origin(self, channel: int) -> tuple[int, int]:
        """(row, col) mosaic pixel of ``channel``'s tile's top-left corner."""
        h, w = self.tile_hw
        r, q = divmod(self.position_of(channel), self.cols)
        return r * (h + self.gap), q * (w + self.gap)

    def tile_at(self, y: float, x: float) -> int | None:
        """Channel whose tile contains mosaic pixel (row ``y``, col ``x``); None on a gap or outside."""
        h, w = self.tile_hw
        if y < 0 or x < 0:
            return None
        r, dy = divmod(int(y), h + self.gap)
        q, dx = divmod(int(x), w + self.gap)
        position = r * self.cols + q
        if dy >= h or dx >= w or q >= self.cols or position >= self.channels:
            return None
        return self.channel_at(position)

    def unit_at(self, y: float, x: float) -> tuple[int, int, int] | None:
        """(channel, row, col) under mosaic pixel (``y``, ``x``)."""
        channel = self.tile_at(y, x)
        if channel is None:
            return None
        h, w = self.tile_hw
        return channel, int(y) % (h + self.gap), int(x) % (w + self.gap)


def layout_for(maps: np.ndarray, cols: int, gap: int = 1, per_channel: bool = True,
               order: str = "index") -> MosaicLayout:
    """The layout of (C, H, W) ``maps`` in ``cols`` columns."""
    c, h, w = maps.shape
    flat = maps.reshape(c, -1)
    positions = None if order == "index" else channel_order(maps, order)
    return MosaicLayout(flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1), (int(h), int(w)), gap,
                        max(1, min(int(cols), c)), positions, per_channel)


def _scaled_tiles(maps: np.ndarray, layout: MosaicLayout, fill, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(padded (rows·cols, H+gap, W+gap) array filled with ``fill``, the (C, H, W) float32 tiles in [0, 1]
    in tile order, NaN where ``maps`` is NaN)."""
    maps = np.asarray(maps, dtype=np.float32)
    c, h, w = maps.shape
    gap = layout.gap
    if layout.per_channel:
        lo, hi = layout.minimum[:, None, None], layout.maximum[:, None, None]
    else:
        lo, hi = np.float32(layout.minimum.min()), np.float32(layout.maximum.max())
    span = np.asarray(hi - lo, dtype=np.float32)
    flat = ~(span > 0)  # no range (or NaN): the tile is 0
    if layout.order is not None:
        maps, lo, span, flat = (a[layout.order] if a.ndim else a for a in (maps, lo, span, flat))
    rows, cols = layout.grid
    padded = np.full((rows * cols, h + gap, w + gap), fill, dtype=dtype)
    tiles = padded[:c, :h, :w] if dtype == np.float32 else np.empty((c, h, w), np.float32)
    np.subtract(maps, lo, out=tiles)  # (maps − lo) / span written in place: the same float32 values, fewer copies
    np.divide(tiles, np.where(flat, np.float32(1), span), out=tiles)
    if flat.ndim == 0:
        if flat:
            tiles[...] = 0.0
    elif flat.any():
        tiles[flat.reshape(-1)] = 0.0
    return padded, tiles


def _untile(padded: np.ndarray, layout: MosaicLayout) -> np.ndarray:
    """(rows·cols, H+gap, W+gap) tiles → the (rows·(H+gap)−gap, cols·(W+gap)−gap) mosaic."""
    (rows, cols), (h, w), gap = layout.grid, layout.tile_hw, layout.gap
    out = padded.reshape(rows, cols, h + gap, w + gap).transpose(0, 2, 1, 3).reshape(rows * (h + gap), cols * (w + gap))
    return out[: rows * (h + gap) - gap, : cols * (w + gap) - gap]


def tile_maps(maps: np.ndarray, layout: MosaicLayout) -> np.ndarray:
    """(C, H, W) → (rows·(H+gap)−gap, cols·(W+gap)−gap) float32 in [0, 1] with NaN gaps."""
    padded, _tiles = _scaled_tiles(maps, layout, np.nan, np.float32)
    return _untile(padded, layout)


def tile_indices(maps: np.ndarray, layout: MosaicLayout) -> np.ndarray:
    """The 8-bit colour indices of :func:`tile_maps`' mosaic, made in one pass: ``round(x·254)`` of each
    clipped value, gaps and NaN values :data:`~.mosaic.GAP_INDEX` (drawn with :func:`~.mosaic.indexed_lut`)."""
    padded, tiles = _scaled_tiles(maps, layout, GAP_INDEX, np.uint8)
    nan = np.isnan(tiles)
    np.clip(tiles, 0.0, 1.0, out=tiles)
    np.multiply(tiles, np.float32(254.0), out=tiles)
    np.rint(tiles, out=tiles)
    if nan.any():
        tiles[nan] = GAP_INDEX
    c, h, w = tiles.shape
    padded[:c, :h, :w] = tiles
    return _untile(padded, layout)
