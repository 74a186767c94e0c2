"""Pooling lab: max, average and L2-norm pooling of the same map, window by window.

The windows come from :mod:`convviz.core.geometry.arithmetic` (the Convolution panel's arithmetic);
the values are computed here in numpy, tap by tap, and checked against ``F.max_pool2d``,
``F.avg_pool2d`` (``count_include_pad=True``, torch's default) and ``F.lp_pool2d`` (p = 2)
in ``tests/core/test_labs_pool.py``. Pooling has no weights: what it reduces is the number
of activations passed on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.arithmetic import AxisGeometry, pool_axis, window_indices

MODES = ("max", "avg", "l2")


def reduction_text(kernel: int, stride: int, values_in: int, values_out: int, channels: int = 1) -> str:
    """``2×2, stride 2: 16 → 4 values, 75% fewer activations; pooling has no weights — …``."""
    head = f"{kernel}×{kernel}, stride {stride}: {values_in} → {values_out} values"
    if channels > 1:
        head += f" per channel ({channels} channels: {channels * values_in} → {channels * values_out})"
    if values_out >= values_in:
        more = values_out - values_in
        return (f"{head}, {'no fewer' if not more else f'{more} more'} activations; pooling has no weights "
                f"and, with these settings, does not shrink the map")
    pct = round(100 * (1 - values_out / values_in))
    return (f"{head}, {pct}% fewer activations; pooling has no weights — the {pct}% is of the activations "
            f"(values) passed on, not of parameters")


@dataclass(frozen=True)
class PoolLab:
    """Max / average / L2 pooling of one channel of a (C, H, W) map.

    Window ``f`` (frame ``f``, row-major over the output) covers input rows
    ``row_starts[f // out_w] … + kernel − 1`` and columns ``col_starts[f % out_w] … + kernel − 1``
    (input coordinates: negative or ≥ size means padding or a ceil_mode overhang).
    ``l2_map`` is None when padding > 0 (``LPPool2d`` has no padding); ``l2_missing`` says why.
    """

    layer: str
    source: str  #: "input" or "output" of ``layer``
    channel: int
    shape: tuple[int, int, int]  #: (C, H, W) of the pooled map
    kernel: int
    stride: int
    padding: int
    ceil_mode: bool
    count_include_pad: bool  #: average pooling: padded zeros count in the divisor (torch's default)
    input_map: np.ndarray  #: (H, W)
    max_map: np.ndarray  #: (H', W')
    avg_map: np.ndarray
    l2_map: np.ndarray | None
    out_shape: tuple[int, int, int]  #: (C, H', W')
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]
    reduction: str  #: the reduction sentence (:func:`reduction_text`)
    notes: tuple[str, ...]  #: padding / ceil_mode / L2 caveats, in words
    l2_missing: str | None = None  #: why there is no L2 map (None: there is one)
    l2_formula: str = "√Σx²"  #: the L2 value of a window; ``√(K²·mean x²)`` when some windows are partial

    @property
    def frames(self) -> int:
        """One frame per output value (per window)."""
        return self.out_shape[1] * self.out_shape[2]

    def window(self, frame: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) input coordinates of window ``frame`` (inclusive)."""
        r, c = divmod(int(frame), self.out_shape[2])
        top, left = self.row_starts[r], self.col_starts[c]
        return top, left, top + self.kernel - 1, left + self.kernel - 1


def _taps(values: np.ndarray, rows: AxisGeometry, cols: AxisGeometry):
    """(H', W', K, K) tap values, taps inside the input, and taps inside the padded input."""
    ri, rin = window_indices(rows)
    ci, cin = window_indices(cols)
    h, w = values.shape
    taps = values[np.clip(ri, 0, h - 1)[:, None, :, None], np.clip(ci, 0, w - 1)[None, :, None, :]]
    inside = rin[:, None, :, None] & cin[None, :, None, :]
    p = rows.spec.pad_lo
    rpad = (ri >= -p) & (ri < h + p)
    cpad = (ci >= -p) & (ci < w + p)
    in_padded = rpad[:, None, :, None] & cpad[None, :, None, :]
    return taps, inside, in_padded


def pool_maps(values: np.ndarray, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False,
              count_include_pad: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(max, avg, l2) of a (H, W) map as torch computes them; l2 is None when ``padding`` > 0.

    max pads with −∞; avg divides by the taps inside the padded input (``count_include_pad``,
    torch's default) or inside the input;
    L2 follows ``F.lp_pool2d``: ``sqrt(mean of x² over the taps inside × K²)``, which is
    ``sqrt(Σ x²)`` for a full window.
    """
    values = np.asarray(values, dtype=np.float64)
    rows = pool_axis(values.shape[0], kernel, stride, padding, 1, ceil_mode)
    cols = pool_axis(values.shape[1], kernel, stride, padding, 1, ceil_mode)
    for geom in (rows, cols):
        if not geom.ok:
            raise ValueError(geom.error)
    taps, inside, in_padded = _taps(values, rows, cols)
    maximum = np.where(inside, taps, -np.inf).max(axis=(2, 3))
    total = np.where(inside, taps, 0.0).sum(axis=(2, 3))
    average = total / (in_padded if count_include_pad else inside).sum(axis=(2, 3))
    l2 = None
    if padding == 0:
        squares = np.where(inside, taps * taps, 0.0).sum(axis=(2, 3))
        l2 = np.sqrt(squares / inside.sum(axis=(2, 3)) * kernel * kernel)
    return maximum, average, l2


def pool_lab(layer: str, maps: np.ndarray, kernel: int = 2, stride: int | None = None, padding: int = 0,
             ceil_mode: bool = False, channel: int = 0, source: str = "output",
             count_include_pad: bool = True) -> PoolLab:
    """Lab data for pooling channel ``channel`` of ``maps`` (C, H, W) with a K×K window."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"{layer}: pooling needs a (channels, height, width) map, got shape {maps.shape}")
    for label, value, least in (("kernel", kernel, 1), ("stride", stride if stride is not None else kernel, 1),
                                ("padding", padding, 0)):
        if int(value) != value or value < least:
            raise ValueError(f"{label} must be a whole number ≥ {least} (got {value})")
    kernel, padding = int(kernel), int(padding)
    stride = kernel if stride is None else int(stride)
    c, h, w = (int(n) for n in maps.shape)
    if not 0 <= int(channel) < c:
        raise ValueError(f"{layer}: channel {channel} does not exist (0–{c - 1})")
    rows = pool_axis(h, kernel, stride, padding, 1, bool(ceil_mode))
    cols = pool_axis(w, kernel, stride, padding, 1, bool(ceil_mode))
    for geom in (rows, cols):
        if not geom.ok:
            raise ValueError(f"{kernel}×{kernel}, stride {stride}, padding {padding} on {h}×{w}: {geom.error}")
    maximum, average, l2 = pool_maps(maps[int(channel)], kernel, stride, padding, bool(ceil_mode),
                                     bool(count_include_pad))
    notes = []
    l2_missing = None
    if padding:
        divisor = ("that count in the divisor (count_include_pad=True)" if count_include_pad else
                   "that do not count in the divisor (count_include_pad=False)")
        notes.append(f"padding {padding}: max pooling pads with −∞ (never chosen), average pooling with zeros "
                     f"{divisor}; LPPool2d has no padding, so no L2 map")
        l2_missing = f"padding {padding}: LPPool2d cannot pad"
    partial = bool(ceil_mode and (rows.partial or cols.partial))
    if partial:
        notes.append("ceil_mode keeps a last, partial window: max and average use the taps that exist; torch's "
                     "LPPool2d scales that window's mean of x² by K² (as if it were full)")
    if rows.uncovered or cols.uncovered:
        notes.append(f"{len(rows.uncovered)} row(s) and {len(cols.uncovered)} column(s) of the input are "
                     f"never read by any window")
    oh, ow = rows.output, cols.output
    return PoolLab(
        layer=layer, source=source, channel=int(channel), shape=(c, h, w), kernel=kernel, stride=stride,
        padding=padding, ceil_mode=bool(ceil_mode), input_map=maps[int(channel)].copy(),
        max_map=maximum.astype(np.float32), avg_map=average.astype(np.float32),
        l2_map=None if l2 is None else l2.astype(np.float32), out_shape=(c, oh, ow),
        row_starts=tuple(s - padding for s in rows.starts), col_starts=tuple(s - padding for s in cols.starts),
        reduction=reduction_text(kernel, stride, h * w, oh * ow, c), notes=tuple(notes),
        count_include_pad=bool(count_include_pad), l2_missing=l2_missing,
        l2_formula="√(K²·mean x²)" if partial else "√Σx²",
    )
