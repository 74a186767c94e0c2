"""Where a layer's units lie on the photo: the shared geometry of Grad-CAM, dense maps and boxes.

Three coordinate systems, pixel ``i`` having its centre at ``i`` in each:

* the **photo** (H, W) the user loaded;
* the **model input** the photo became (:class:`Frame`: the centre crop resized, or the whole
  photo resized), ``photo = left + (input + 0.5)·scale − 0.5``;
* a **layer's grid** (:class:`Grid`): unit ``i`` is centred on input pixel ``start + i·jump`` and
  sees ``rf`` input pixels (the receptive field and total stride the Layers table shows).

Maps are resampled from the grid to the photo with exactly these centres (bilinear between unit
centres, the edge value beyond the outer ones), never with ``interpolate``'s own alignment.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..capture.activations import first_tensor
from ..capture.receptive_field import FieldTracer, traced_pass
from .layer_tap import find_module, on_call

@dataclass(frozen=True)
class Frame:
    """How the model input lies on the photo: input pixel x → photo ``left + (x + 0.5)·sx − 0.5``."""

    left: float
    top: float
    sx: float
    sy: float
    photo_hw: tuple[int, int]
    input_hw: tuple[int, int]

    def edges_to_photo(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """A box given by input-pixel *edges* → photo-pixel edges."""
        return (self.left + x0 * self.sx, self.top + y0 * self.sy, self.left + x1 * self.sx, self.top + y1 * self.sy)


def crop_frame(preprocess, photo_hw: tuple[int, int]) -> Frame:
    """The centre crop the model classifies (:meth:`Preprocess.crop_box`) resized to its input size."""
    height, width = photo_hw
    left, top, right, bottom = preprocess.crop_box(width, height)
    side = preprocess.input_size
    return Frame(left, top, (right - left) / side, (bottom - top) / side, (height, width), (side, side))


def whole_frame(photo_hw: tuple[int, int], input_hw: tuple[int, int]) -> Frame:
    """The whole photo resized to ``input_hw``."""
    return Frame(0.0, 0.0, photo_hw[1] / input_hw[1], photo_hw[0] / input_hw[0], tuple(photo_hw), tuple(input_hw))


@dataclass(frozen=True)
class Grid:
    """A layer's units on the model input: (H, W) pairs, in input pixels."""

    shape: tuple[int, int]
    rf: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]

    def cell_edges(self, i: int, j: int) -> tuple[float, float, float, float]:
        """Input-pixel edges (x0, y0, x1, y1) of the jump × jump square centred on unit (i, j)."""
        cy, cx = self.start[0] + i * self.jump[0], self.start[1] + j * self.jump[1]
        return (cx + 0.5 - self.jump[1] / 2, cy + 0.5 - self.jump[0] / 2,
                cx + 0.5 + self.jump[1] / 2, cy + 0.5 + self.jump[0] / 2)


def to_photo(maps: np.ndarray | torch.Tensor, grid: Grid, frame: Frame, out_hw: tuple[int, int],
             outside: float = 0.0) -> np.ndarray:
    """(C, h, w) grid maps → (C, out_h, out_w) float32 over the whole photo (out_hw: its view size).

    Bilinear between unit centres; pixels outside the model input (outside the centre crop)
    get ``outside``."""
    maps = torch.as_tensor(np.asarray(maps, np.float32) if isinstance(maps, np.ndarray) else maps.float())
    out_h, out_w = out_hw
    axes = []
    for n_out, n_photo, lead, scale, n_in, start, jump, cells in (
            (out_h, frame.photo_hw[0], frame.top, frame.sy, frame.input_hw[0], grid.start[0], grid.jump[0], grid.shape[0]),
            (out_w, frame.photo_hw[1], frame.left, frame.sx, frame.input_hw[1], grid.start[1], grid.jump[1], grid.shape[1])):
        photo = (np.arange(n_out) + 0.5) * (n_photo / n_out) - 0.5
        inp = (photo - lead + 0.5) / scale - 0.5
        unit = (inp - start) / jump
        norm = 2 * unit / (cells - 1) - 1 if cells > 1 else np.zeros_like(unit)
        axes.append((norm, (inp >= -0.5) & (inp <= n_in - 0.5)))
    (gy, in_y), (gx, in_x) = axes
    grid_xy = torch.from_numpy(np.stack(np.meshgrid(gx, gy), -1).astype(np.float32))[None]
    out = F.grid_sample(maps[None], grid_xy, mode="bilinear", padding_mode="border", align_corners=True)[0].numpy()
    inside = in_y[:, None] & in_x[None, :]
    if not inside.all():
        out[:, ~inside] = outside
    return out


def mask_boxes(mask: np.ndarray) -> list[tuple[slice, slice, np.ndarray]]:
    """Connected regions (8-neighbours) of a 2-D bool mask: (rows, cols, region mask) each."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return [(rows, cols, labels[rows, cols] == k + 1)
            for k, (rows, cols) in enumerate(ndimage.find_objects(labels)) if rows is not None]


# ---------------------------------------------------------------------------------------------
# A layer's grid at any input size


_GRIDS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def _trace(model: nn.Module, layer: str, in_hw: tuple[int, int]) -> Grid:
    module, call = find_module(model, layer)
    x = torch.zeros((1, 3, *in_hw))
    tracer, seen = FieldTracer(x), []
    traced_pass(model, tracer, x, [module], on_call(call, lambda output: seen.append(first_tensor(output))))
    out = seen[0] if seen else None
    fields = tracer.field_of(out) if out is not None else None
    if fields is None or out.dim() != 4:
        raise ValueError(f"{layer}: its output has no spatial extent, so it has no grid on the photo")
    return Grid(tuple(out.shape[-2:]), tuple(f.size for f in fields), tuple(f.jump for f in fields),
                tuple(f.start for f in fields))


def remember_grid(model: nn.Module, layer: str, in_hw: tuple[int, int], grid: Grid) -> None:
    """Keep a grid traced elsewhere (the head search traces its pass) for :func:`layer_grid`."""
    _GRIDS.setdefault(model, {})[(layer, tuple(in_hw))] = grid


def layer_grid(model: nn.Module, layer: str, in_hw: tuple[int, int], native: int = 224) -> Grid:
    """Where ``layer``'s units lie on an input of ``in_hw`` (traced through the real graph, cached).

    The field's start depends on the input size only through padding that depends on the size
    modulo the stride (TF "SAME"), so after one trace at the model's ``native`` size (which gives
    the total stride J) it is traced at ``n mod J + k·J`` per axis, a smaller input with the same
    residues (k·J at least 4·J or ``native``, whichever is less), and the shape grows by the whole
    strides left out. If that small input is refused, ``in_hw`` itself is traced."""
    cache = _GRIDS.setdefault(model, {})
    key = (layer, tuple(in_hw))
    if key in cache:
        return cache[key]
    base = cache.get((layer, (native, native)))
    if base is None:
        base = cache[(layer, (native, native))] = _trace(model, layer, (native, native))
    small = tuple(_small(n, j, native) for n, j in zip(in_hw, base.jump))
    grid = cache.get((layer, small))
    if grid is None:
        try:
            grid = cache[(layer, small)] = _trace(model, layer, small)
        except RuntimeError:
            grid = small = None
    if grid is None or any(j != b for j, b in zip(grid.jump, base.jump)):
        grid = _trace(model, layer, tuple(in_hw))
    elif small != tuple(in_hw):
        extra = tuple((n - s) // round(j) for n, s, j in zip(in_hw, small, grid.jump))
        grid = replace(grid, shape=tuple(c + e for c, e in zip(grid.shape, extra)))
    cache[key] = grid
    return grid


def _small(n: int, jump: float, native: int) -> int:
    if not float(jump).is_integer() or jump < 1:
        return n
    j = int(jump)
    floor = j * max(1, -(-min(native, 4 * j) // j))
    return n if n <= floor else floor + (n - floor) % j


def grid_from_row(row, shape: tuple[int, int]) -> Grid | None:
    """A :class:`Grid` from a Layers-table row (None when the row has no spatial field)."""
    if row is None or row.rf is None or row.jump is None or row.start is None:
        return None
    return Grid(tuple(shape), tuple(map(float, row.rf)), tuple(map(float, row.jump)), tuple(map(float, row.start)))


def mean_side(hw: tuple[float, float]) -> float:
    """One number for an (H, W) pair that is usually square."""
    return hw[0] if math.isclose(hw[0], hw[1]) else (hw[0] + hw[1]) / 2
