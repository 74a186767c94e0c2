"""Effective vs theoretical receptive field (Luo, Li, Urtasun & Zemel, 2016).

A unit's theoretical field is the box of input pixels it can depend on; its *effective* field is
where ``|∂unit/∂input|`` actually lies, Gaussian-like and much smaller. Here: that magnitude (the
Euclidean norm over the colour channels) as a heat map, its spread (weighted standard deviation per
axis) and the share of the box's real pixels that holds 90 % of its mass; for a layer, the mean
over a grid of units (one batched backward pass). Gradients come from :func:`torch.autograd.grad`,
so the model's own ``.grad`` fields are never touched.

:func:`stack_demo` is Luo et al.'s exact case: n 3×3 convolutions with equal weights, no
non-linearity. The gradient of the centre unit is the n-fold convolution of a 3×3 box, so its
standard deviation per axis is √(2n/3) (each step adds the variance 2/3 of {−1, 0, 1}) while the
box grows as 2n + 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..tasks import Need, Scope, TaskInputs, TaskState, task
from ..capture.unit_field import unit_field
from .layer_tap import check_channel, layer_row, run_to, spatial_row

MASS = 0.9  #: the share of the gradient mass whose area is reported
GRID = 4  #: a layer average uses GRID × GRID units spread over the map
CHUNK = 8  #: units per batched backward pass


@dataclass(frozen=True)
class UnitErf:
    """One unit's effective field on the model input (S × S)."""

    layer: str
    channel: int | None  #: None: the sum over the layer's channels at that position
    unit: tuple[int, int]  #: (row, col) at the layer
    heat: np.ndarray  #: (S, S) float32, |∂unit/∂input| scaled to a maximum of 1
    box: tuple[tuple[float, float], tuple[float, float]]  #: theoretical field, (first, last) per axis, unclipped
    seen: tuple[int, int, int, int]  #: (top, bottom, left, right) real pixels of the box, inclusive
    rf: tuple[float, float]  #: theoretical field size (H, W)
    share: float  #: share of the box's real pixels holding MASS of the gradient (0…1)
    pixels: int  #: how many pixels that is
    centre: tuple[float, float]  #: gradient-weighted mean position (row, col)
    std: tuple[float, float]  #: gradient-weighted standard deviation (rows, cols), pixels
    #: share of the gradient mass outside the box: 0 for plain convolutions; global gates
    #: (squeeze-excitation) see the whole image, the field tracer does not count them
    outside: float
    input_rgb: np.ndarray | None = None  #: (S, S, 3) uint8, the photo as the model sees it

    @property
    def seen_area(self) -> int:
        t, b, l, r = self.seen
        return (b - t + 1) * (r - l + 1)

    def sentence(self) -> str:
        """One line: where 90 % of the gradient lies, against the box."""
        t, b, l, r = self.seen
        rf = "×".join(f"{v:g}" for v in self.rf)
        share = f"{self.share * 100:.0f} %" if self.share >= 0.01 else "under 1 %"
        text = (f"{MASS * 100:.0f} % of |∂unit/∂input| lies in {share} of the {b - t + 1}×{r - l + 1} "
                f"real pixels of its {rf} theoretical field (spread σ ≈ {self.std[0]:.1f} × {self.std[1]:.1f} px)")
        if self.outside >= 0.001:
            text += f"; {self.outside * 100:.1f} % lies outside it (global gates such as squeeze-excitation)"
        return text


@dataclass(frozen=True)
class LayerErf:
    """The mean over a grid of a layer's units."""

    layer: str
    channel: int | None
    units: tuple[tuple[int, int], ...]
    shares: np.ndarray  #: (U,) share of each unit's box holding MASS of its gradient
    stds: np.ndarray  #: (U, 2) spread per unit, pixels
    rf: tuple[float, float]

    @property
    def mean_share(self) -> float:
        return float(self.shares.mean())

    @property
    def mean_std(self) -> tuple[float, float]:
        return float(self.stds[:, 0].mean()), float(self.stds[:, 1].mean())


@dataclass(frozen=True)
class ErfResult:
    """What :func:`erf_task` returns."""

    unit: UnitErf
    layer: LayerErf | None


def input_gradients(model: nn.Module, x: torch.Tensor, layer: str, units, channel: int | None = None) -> np.ndarray:
    """|∂unit/∂input| (norm over colour channels) for each (row, col) in ``units`` on image ``x`` (1, C, S, S):
    (U, S, S) float32, from one batched forward + backward (each copy of ``x`` differentiates its own unit)."""
    units = list(units)
    with torch.enable_grad():
        xb = x.detach().expand(len(units), *x.shape[1:]).clone().requires_grad_(True)
        out = run_to(model, xb, layer)
        index = torch.arange(len(units))
        if out.dim() == 4:
            rows = torch.tensor([u[0] for u in units])
            cols = torch.tensor([u[1] for u in units])
            picked = out[index, :, rows, cols]  # (U, C)
        else:
            picked = out.reshape(len(units), -1)
        picked = picked.sum(1) if channel is None else picked[:, channel]
        (grad,) = torch.autograd.grad(picked.sum(), xb)
    return grad.detach().float().norm(dim=1).numpy()


def mass_share(heat: np.ndarray, seen: tuple[int, int, int, int], mass: float = MASS) -> tuple[float, int]:
    """(share of the ``seen`` box's pixels, their count) that the fewest pixels holding ``mass`` of
    ``heat``'s total take up."""
    t, b, l, r = seen
    flat = np.sort(heat.astype(np.float64).ravel())[::-1]
    total = flat.sum()
    if total <= 0:
        return 0.0, 0
    pixels = int(np.searchsorted(np.cumsum(flat), mass * total * (1 - 1e-12)) + 1)
    return pixels / ((b - t + 1) * (r - l + 1)), pixels


def spread(heat: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """((row, col) weighted mean, (row, col) weighted standard deviation) of ``heat``."""
    weights = heat.astype(np.float64)
    total = weights.sum()
    if total <= 0:
        return (math.nan, math.nan), (0.0, 0.0)
    centre, std = [], []
    for axis in (1, 0):  # summing columns gives the row profile, and the reverse
        profile = weights.sum(axis=axis)
        pos = np.arange(profile.size)
        mean = float((profile * pos).sum() / total)
        centre.append(mean)
        std.append(float(math.sqrt(max(0.0, (profile * (pos - mean) ** 2).sum() / total))))
    return (centre[0], centre[1]), (std[0], std[1])


def _unit_erf(row, layer, channel, unit, heat, size, input_rgb=None) -> UnitErf:
    if spatial_row(row):
        field = unit_field(row, unit[0], unit[1], (size, size))
        box, rf = field.box, field.size
        seen = tuple(v for s in field.seen for v in (s if s is not None else (0, size - 1)))
    else:
        box, rf, seen = ((0.0, size - 1.0), (0.0, size - 1.0)), (float(size), float(size)), (0, size - 1, 0, size - 1)
    share, pixels = mass_share(heat, seen)
    centre, std = spread(heat)
    total = float(heat.sum(dtype=np.float64))
    t, b, l, r = seen
    outside = 0.0 if total <= 0 else max(0.0, float(1 - heat[t:b + 1, l:r + 1].sum(dtype=np.float64) / total))
    peak = float(heat.max())
    return UnitErf(layer, channel, unit, (heat / peak if peak > 0 else heat).astype(np.float32), box, seen, rf,
                   share, pixels, centre, std, outside, input_rgb)


def _check_unit(row, unit: tuple[int, int]) -> tuple[int, int]:
    h, w = (row.out_shape[1], row.out_shape[2]) if len(row.out_shape) == 3 else (1, 1)
    y, x = int(unit[0]), int(unit[1])
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"unit ({y}, {x}) is outside {row.name}'s {h}×{w} map (rows 0–{h - 1}, columns 0–{w - 1})")
    return y, x


def _layer_input(loaded, rgb, layer, rows):
    """(layer row, model input (1, 3, S, S), the photo as the model sees it (S, S, 3) uint8): one resize."""
    if len(rgb.shape) != 3 or rgb.shape[-1] < 3:
        raise ValueError("the image must be (H, W, 3) RGB")
    row = layer_row(loaded.module, layer, loaded.preprocess.input_size, rows)
    if len(row.out_shape) not in (1, 3):
        raise ValueError(f"{layer}: its output is {row.out_shape}, neither a map (C, H, W) nor a vector")
    pp = loaded.preprocess
    seen = pp.to_uint8(rgb)
    return row, torch.from_numpy(pp.scale(seen))[None], seen


def unit_erf(loaded, rgb: np.ndarray, layer: str, unit: tuple[int, int] | None = None, channel: int | None = None,
             rows=()) -> UnitErf:
    """The effective field of ``unit`` (default: the centre of the map) of ``layer`` on photo ``rgb``."""
    row, x, seen = _layer_input(loaded, rgb, layer, rows)
    if channel is not None:
        channel = check_channel(channel, row.out_shape[0], layer)
    unit = _check_unit(row, unit if unit is not None else centre_unit(row))
    heat = input_gradients(loaded.module, x, layer, [unit], channel)[0]
    return _unit_erf(row, layer, channel, unit, heat, x.shape[-1], seen)


def centre_unit(row) -> tuple[int, int]:
    return (row.out_shape[1] // 2, row.out_shape[2] // 2) if len(row.out_shape) == 3 else (0, 0)


def grid_units(row, grid: int = GRID) -> list[tuple[int, int]]:
    """Up to ``grid`` × ``grid`` units spread evenly over the layer's map (one for a vector)."""
    if len(row.out_shape) != 3:
        return [(0, 0)]
    h, w = row.out_shape[1:]
    ys = sorted({min(h - 1, int((i + 0.5) * h / grid)) for i in range(grid)})
    xs = sorted({min(w - 1, int((i + 0.5) * w / grid)) for i in range(grid)})
    return [(y, x) for y in ys for x in xs]


def layer_erf(loaded, rgb: np.ndarray, layer: str, channel: int | None = None, grid: int = GRID, rows=(),
              state: TaskState | None = None) -> LayerErf:
    """Effective fields of a grid of ``layer``'s units on ``rgb``: their shares and spreads."""
    state = state or TaskState()
    row, x, _ = _layer_input(loaded, rgb, layer, rows)
    if channel is not None:
        channel = check_channel(channel, row.out_shape[0], layer)
    units = grid_units(row, grid)
    shares, stds = [], []
    for start in range(0, len(units), CHUNK):
        state.check()
        chunk = units[start:start + CHUNK]
        for unit, heat in zip(chunk, input_gradients(loaded.module, x, layer, chunk, channel)):
            erf = _unit_erf(row, layer, channel, unit, heat, x.shape[-1])
            shares.append(erf.share)
            stds.append(erf.std)
        state.progress((start + len(chunk)) / len(units), f"{start + len(chunk)} / {len(units)} units")
    rf = tuple(float(v) for v in row.rf) if spatial_row(row) else (float(x.shape[-1]),) * 2
    return LayerErf(layer, channel, tuple(units), np.asarray(shares, np.float64), np.asarray(stds, np.float64), rf)


@task(Scope.IMAGE, (Need.MODEL, Need.GRADIENTS, Need.IMAGE), title="Computing the effective receptive field…")
def erf_task(inputs: TaskInputs, state: TaskState) -> ErfResult:
    """args: ``layer``, ``unit`` (row, col; default the centre), ``channel`` (None: all), ``average`` (bool)."""
    args, loaded = inputs.args, inputs.model
    layer, channel = str(args["layer"]), args.get("channel")
    unit = tuple(args["unit"]) if args.get("unit") is not None else None
    state.progress(0.0, "one unit")
    one = unit_erf(loaded, inputs.rgb, layer, unit, channel, inputs.rows)
    state.check()
    average = layer_erf(loaded, inputs.rgb, layer, channel, rows=inputs.rows, state=state) if args.get("average") else None
    return ErfResult(one, average)


# ---------------------------------------------------------------------------------------------
# The uniform 3×3 stack


@dataclass(frozen=True)
class StackDemo:
    """Per depth n: the measured spread of the centre unit's gradient, √(2n/3) and the box 2n + 1."""

    depths: tuple[int, ...]
    std: tuple[float, ...]
    predicted: tuple[float, ...]
    box: tuple[int, ...]
    profiles: tuple[np.ndarray, ...]  #: the gradient's row profile through the centre, normalised to sum 1


def uniform_stack(n: int) -> nn.Sequential:
    """n single-channel 3×3 convolutions (stride 1, no padding, no bias), every weight 1/9."""
    layers = []
    for _ in range(n):
        conv = nn.Conv2d(1, 1, 3, bias=False)
        nn.init.constant_(conv.weight, 1 / 9)
        layers.append(conv)
    return nn.Sequential(*layers)


def stack_std(n: int) -> tuple[float, np.ndarray]:
    """(standard deviation per axis, row profile) of |∂centre/∂input| for :func:`uniform_stack` (n):
    the input is the box (2n + 1 pixels a side), so the output is the single centre unit."""
    size = 2 * n + 1
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        out = uniform_stack(n).double()(x)
        (grad,) = torch.autograd.grad(out.sum(), x)
    heat = grad[0, 0].abs().numpy()
    _, std = spread(heat)
    profile = heat.sum(axis=1)
    return std[0], profile / profile.sum()


def stack_demo(depths=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32)) -> StackDemo:
    """Luo et al.'s uniform stack at each depth: measured σ against √(2n/3) and the box 2n + 1."""
    measured = [stack_std(int(n)) for n in depths]
    return StackDemo(tuple(int(n) for n in depths), tuple(s for s, _ in measured),
                     tuple(math.sqrt(2 * int(n) / 3) for n in depths), tuple(2 * int(n) + 1 for n in depths),
                     tuple(p for _, p in measured))
