"""Sliding-window arithmetic of Conv2d and pooling along one axis (pure Python + numpy).

Everything is checked against PyTorch's own layers in ``tests/core/test_geometry.py``:

* conv:  ``O = floor((W + P_lo + P_hi − D·(K−1) − 1) / S) + 1``; torch refuses a window
  wider than the padded input;
* pool:  the same with ``floor``, or with ``ceil`` when ``ceil_mode=True`` — and then the
  last window must start inside the input or the left padding, else it is dropped; torch
  also refuses padding larger than half the kernel and an output smaller than 1.
  AvgPool2d and LPPool2d have no dilation, and LPPool2d has no padding (``AxisSpec.pool``).

Windows are described in *padded* coordinates: padded index ``i`` is input index ``i − P_lo``.
Bad settings never raise here; :func:`analyse_axis` returns an ``error`` message instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .padding import tf_same_split

CONV = "conv"
POOL = "pool"
#: Pooling operations (``AxisSpec.pool``) and the torch layer of each toy mode.
POOL_OPS = ("max", "avg", "l2")
LAYER_NAMES = {"conv": "Conv2d", "max": "MaxPool2d", "avg": "AvgPool2d", "l2": "LPPool2d"}


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``D·(K−1) + 1`` cells."""
    return dilation * (kernel - 1) + 1


@dataclass(frozen=True)
class AxisSpec:
    """Settings of a sliding window along one axis.

    ``pad_hi`` defaults to ``pad_lo`` (symmetric padding); ``ceil_mode`` only exists for
    pooling (``kind == "pool"``).
    """

    size: int
    kernel: int
    stride: int = 1
    pad_lo: int = 0
    pad_hi: int | None = None
    dilation: int = 1
    kind: str = CONV
    ceil_mode: bool = False
    pool: str = "max"  #: pooling only: "max", "avg" or "l2" (LPPool2d, p = 2)

    @property
    def mode(self) -> str:
        """``conv``, ``max``, ``avg`` or ``l2``."""
        return CONV if self.kind == CONV else self.pool

    @property
    def padding_end(self) -> int:
        """Padding after the input (``pad_hi``, or ``pad_lo`` when symmetric)."""
        return self.pad_lo if self.pad_hi is None else self.pad_hi

    @property
    def padded(self) -> int:
        """``W + P_lo + P_hi``."""
        return self.size + self.pad_lo + self.padding_end

    @property
    def span(self) -> int:
        """Effective kernel ``D·(K−1) + 1``."""
        return effective_kernel(self.kernel, self.dilation)


def validate(spec: AxisSpec) -> str | None:
    """One-line reason why torch would refuse ``spec``, or None when it is accepted."""
    names = (("input size W", spec.size, 1), ("kernel K", spec.kernel, 1), ("stride S", spec.stride, 1),
             ("dilation D", spec.dilation, 1), ("padding P", spec.pad_lo, 0), ("padding P", spec.padding_end, 0))
    for label, value, least in names:
        if not isinstance(value, (int, np.integer)) or value < least:
            return f"{label} must be a whole number ≥ {least} (got {value})."
    if spec.kind not in (CONV, POOL):
        return f"unknown layer kind {spec.kind!r} (use 'conv' or 'pool')."
    if spec.ceil_mode and spec.kind != POOL:
        return "ceil_mode exists only for pooling; Conv2d always rounds down."
    if spec.kind == POOL and spec.pool not in POOL_OPS:
        return f"unknown pooling {spec.pool!r} (use 'max', 'avg' or 'l2')."
    if spec.kind == POOL and spec.pool != "max" and spec.dilation != 1:
        return f"{LAYER_NAMES[spec.pool]} has no dilation: only MaxPool2d spreads its taps (set D = 1)."
    if spec.kind == POOL and spec.pool == "l2" and max(spec.pad_lo, spec.padding_end):
        return "LPPool2d has no padding argument: it pools the input as it is (set P = 0)."
    if spec.kind == POOL and max(spec.pad_lo, spec.padding_end) > spec.kernel // 2:
        return (f"pooling padding P={max(spec.pad_lo, spec.padding_end)} is more than half the kernel "
                f"(K/2 = {spec.kernel // 2}): torch refuses it, a window could see only padding.")
    if spec.kind == CONV and spec.span > spec.padded:
        return (f"the window spans {spec.span} cells (D·(K−1)+1) but the padded input is only "
                f"{spec.padded} (W + 2P): torch refuses a kernel larger than the padded input.")
    if _raw_output(spec) < 1:
        return (f"no window fits: the window spans {spec.span} cells but the padded input is "
                f"{spec.padded}; torch reports 'Output size is too small'.")
    return None


def _raw_output(spec: AxisSpec) -> int:
    """PyTorch's output size before validation (may be ≤ 0)."""
    extra = spec.stride - 1 if spec.ceil_mode else 0
    out = (spec.padded - spec.span + extra) // spec.stride + 1  # floor division, as torch's div_rtn
    if spec.ceil_mode and out > 0 and (out - 1) * spec.stride >= spec.size + spec.pad_lo:
        out -= 1  # the last window must start inside the input or the left padding
    return out


@dataclass(frozen=True)
class AxisGeometry:
    """Where the windows fall along one axis, and what they miss.

    ``starts`` are padded coordinates of each window's first tap; ``uncovered`` lists
    input indices that no tap reads (``trailing``: those after the last window,
    ``gaps``: holes between windows or between dilated taps). ``partial`` is true when
    the last window (ceil_mode) runs past the end of the padded input.
    """

    spec: AxisSpec
    error: str | None
    exact: Fraction
    output: int
    starts: tuple[int, ...] = ()
    uncovered: tuple[int, ...] = ()
    trailing: tuple[int, ...] = ()
    gaps: tuple[int, ...] = ()
    partial: bool = False
    extent: int = 0
    coverage: np.ndarray = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when torch accepts the settings."""
        return self.error is None

    @property
    def is_whole(self) -> bool:
        """True when ``(W + 2P − D·(K−1) − 1)/S + 1`` is a whole number."""
        return self.exact.denominator == 1

    @property
    def floor_output(self) -> int:
        """Output of the floor rule (Conv2d, pooling without ceil_mode)."""
        return math.floor(self.exact)

    def taps(self, index: int) -> np.ndarray:
        """Padded coordinates of the taps of window ``index``."""
        return self.starts[index] + self.spec.dilation * np.arange(self.spec.kernel)

    def windows_reading(self, input_index: int) -> list[int]:
        """Output indices whose window reads input index ``input_index``."""
        padded = input_index + self.spec.pad_lo
        span, dilation = self.spec.span, self.spec.dilation
        return [i for i, start in enumerate(self.starts)
                if start <= padded < start + span and (padded - start) % dilation == 0]


def analyse_axis(spec: AxisSpec) -> AxisGeometry:
    """Output size, exact fraction, window starts and uncovered input cells of ``spec``."""
    stride = spec.stride if isinstance(spec.stride, (int, np.integer)) and spec.stride > 0 else 1
    exact = Fraction(spec.padded - spec.span, stride) + 1
    error = validate(spec)
    if error is not None:
        return AxisGeometry(spec, error, exact, 0, extent=max(spec.padded, spec.span, 0),
                            coverage=np.zeros(max(spec.size, 0), dtype=np.int32))
    out = _raw_output(spec)
    starts = tuple(i * spec.stride for i in range(out))
    taps = (np.asarray(starts)[:, None] + spec.dilation * np.arange(spec.kernel)[None, :]).ravel()
    inside = taps[(taps >= spec.pad_lo) & (taps < spec.pad_lo + spec.size)] - spec.pad_lo
    coverage = np.bincount(inside, minlength=spec.size).astype(np.int32)
    uncovered = tuple(int(i) for i in np.flatnonzero(coverage == 0))
    last_read = int(inside.max()) if inside.size else -1
    trailing = tuple(i for i in uncovered if i > last_read)
    gaps = tuple(i for i in uncovered if i <= last_read)
    end = starts[-1] + spec.span
    return AxisGeometry(spec, None, exact, out, starts, uncovered, trailing, gaps,
                        partial=end > spec.padded, extent=max(spec.padded, end), coverage=coverage)


def conv_axis(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> AxisGeometry:
    """:func:`analyse_axis` for a Conv2d with symmetric padding."""
    return analyse_axis(AxisSpec(size, kernel, stride, padding, None, dilation, CONV))


def pool_axis(size: int, kernel: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
              ceil_mode: bool = False, pool: str = "max") -> AxisGeometry:
    """:func:`analyse_axis` for MaxPool2d / AvgPool2d / LPPool2d (stride defaults to the kernel, as in torch)."""
    return analyse_axis(AxisSpec(size, kernel, kernel if stride is None else stride, padding, None, dilation,
                                 POOL, ceil_mode, pool))


def toy_spec(mode: str, size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
             ceil_mode: bool = False) -> AxisSpec:
    """The spec of a toy layer: ``mode`` is ``conv`` (ceil_mode ignored), ``max``, ``avg`` or ``l2``."""
    if mode == CONV:
        return AxisSpec(size, kernel, stride, padding, None, dilation, CONV)
    return AxisSpec(size, kernel, stride, padding, None, dilation, POOL, bool(ceil_mode), mode)


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                kind: str = CONV, ceil_mode: bool = False) -> int:
    """Output length torch computes, or 0 when torch would refuse the settings."""
    return analyse_axis(AxisSpec(size, kernel, stride, padding, None, dilation, kind, ceil_mode)).output


@dataclass(frozen=True)
class SamePadding:
    """Padding that keeps ``output == input`` (None when no symmetric one exists) and why."""

    padding: int | None
    reason: str


def same_padding(kernel: int, stride: int = 1, dilation: int = 1, size: int | None = None) -> SamePadding:
    """``P = D·(K−1)/2`` for stride 1; None with a reason for an odd total.

    With stride > 1 the P that keeps the size depends on W: given ``size`` the smallest
    such P is returned (if any), else None.
    """
    if stride != 1:
        general = (f"with stride {stride} the padding that keeps the output at W depends on W itself "
                   f"(P ≈ ((S−1)·W + D·(K−1))/2), so no one 'same' padding exists; torch's padding='same' "
                   f"requires stride 1.")
        if size is not None:
            for pad in range(0, stride * size + effective_kernel(kernel, dilation)):
                if conv_axis(size, kernel, stride, pad, dilation).output == size:
                    return SamePadding(pad, f"For W = {size} only: P = {pad} keeps {size}×{size} — {general}")
        return SamePadding(None, general[0].upper() + general[1:])
    total = dilation * (kernel - 1)
    if total % 2:
        return SamePadding(None, f"K={kernel} is even: the total padding D·(K−1) = {total} is odd, so no "
                                 f"symmetric P exists; torch's padding='same' pads {total // 2} before "
                                 f"and {total - total // 2} after.")
    return SamePadding(total // 2, f"P = D·(K−1)/2 = {total // 2} keeps the output the size of the input.")


def pool_same_padding(kernel: int, stride: int, dilation: int = 1, size: int = 1, pool: str = "max",
                      ceil_mode: bool = False) -> SamePadding:
    """Pooling has no ``padding='same'``: the smallest padding torch *allows* for this pooling layer
    (0 … K/2; none for LPPool2d) that keeps the output at ``size``, or None with the reason."""
    layer = LAYER_NAMES[pool]
    allowed = [0] if pool == "l2" else list(range(kernel // 2 + 1))
    limit = ("LPPool2d cannot pad at all" if pool == "l2" else
             f"torch lets {layer} pad at most K/2 = {kernel // 2} per side")
    head = f"Pooling has no padding='same' (only Conv2d has it, and only at stride 1); {limit}."
    for pad in allowed:
        geom = analyse_axis(AxisSpec(size, kernel, stride, pad, None, dilation, POOL, ceil_mode, pool))
        if geom.ok and geom.output == size:
            return SamePadding(pad, f"{head} Here P = {pad} keeps {size}×{size}.")
    outs = [g.output for g in (analyse_axis(AxisSpec(size, kernel, stride, p, None, dilation, POOL, ceil_mode, pool))
                               for p in allowed) if g.ok]
    got = f" (allowed paddings give {', '.join(f'{o}×{o}' for o in sorted(set(outs)))})" if outs else ""
    why = (f"pooling with stride {stride} shrinks the map on purpose" if stride > 1 else
           f"a window spanning {effective_kernel(kernel, dilation)} cells needs more padding than torch allows")
    return SamePadding(None, f"{head} No allowed P keeps {size}×{size} here{got}: {why}.")


def tf_same_spec(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> AxisSpec:
    """A Conv2d axis padded as TensorFlow / ONNX "SAME" (:func:`convviz.core.geometry.padding.tf_same_split`):
    uneven for an odd total, the extra cell after."""
    before, after = tf_same_split(size, kernel, stride, dilation)
    return AxisSpec(size, kernel, stride, before, after, dilation, CONV)


def fraction_text(value: Fraction, digits: int = 2) -> str:
    """``7/3`` → ``'2.33'``; whole numbers without decimals."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.{digits}f}".rstrip("0").rstrip(".")


def ranges_text(indices: tuple[int, ...] | list[int]) -> str:
    """``(0, 1, 2, 5, 7, 8)`` → ``'0–2, 5, 7–8'``."""
    parts: list[str] = []
    items = sorted(int(i) for i in indices)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        parts.append(str(items[i]) if i == j else f"{items[i]}–{items[j]}")
        i = j + 1
    return ", ".join(parts)


@lru_cache(maxsize=None)
def _toy_table(seed: int, low: int, high: int, shape: tuple[int, int, int]) -> np.ndarray:
    table = np.random.default_rng(seed).integers(low, high, size=shape).astype(np.float64)
    table.flags.writeable = False
    return table


def toy_input(channels: int, size: int) -> np.ndarray:
    """Small whole numbers (0–4) for the toy grid; growing ``size`` keeps earlier cells."""
    return _toy_table(7, 0, 5, (16, 64, 64))[:channels, :size, :size]


def toy_kernel(channels: int, kernel: int) -> np.ndarray:
    """Small whole-number weights (−1, 0, 1) for the toy filter."""
    return _toy_table(11, -1, 2, (16, 16, 16))[:channels, :kernel, :kernel]


def toy_kernel_bank(filters: int, channels: int, kernel: int) -> np.ndarray:
    """(F, C, K, K) toy filters; filter 0 is :func:`toy_kernel`."""
    bank = np.array(_toy_table(17, -1, 2, (64, 16, 16 * 16))[:filters, :channels, :kernel * kernel])
    bank = bank.reshape(filters, channels, kernel, kernel)
    bank[0] = toy_kernel(channels, kernel)
    return bank


def window_indices(geom: AxisGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (O, K) of every tap of every window, and whether each is inside the input."""
    idx = np.asarray(geom.starts, dtype=np.int64)[:, None] + geom.spec.dilation * np.arange(geom.spec.kernel)
    idx = idx - geom.spec.pad_lo
    return idx, (idx >= 0) & (idx < geom.spec.size)


def toy_bias(filters: int) -> np.ndarray:
    """Small whole-number biases (−2 … 2), one per toy filter."""
    return np.array(_toy_table(13, -2, 3, (1, 1, 64))[0, 0, :filters])


def sliding_output(values: np.ndarray, weights: np.ndarray | None, rows: AxisGeometry, cols: AxisGeometry,
                   bias: np.ndarray | None = None) -> np.ndarray:
    """Output of a toy layer, as torch computes it; the mode comes from ``rows.spec``.

    * conv: ``weights`` (F, C, K, K) → (F, O, O): Σ window × weights over every channel
      (zero padding) + ``bias`` (F,); 3-D weights (C, K, K) are one filter → (O, O);
    * max / avg / l2 pooling: each channel on its own → (C, O, O). max pads with −∞; avg
      divides by the taps inside the padded input (``count_include_pad``); l2 follows
      ``F.lp_pool2d``: √(K²/n · Σ x²) over the n taps that exist (√Σx² for a full window).

    Taps outside the padded input (a ceil_mode partial window) are ignored, as torch does.
    """
    mode = rows.spec.mode
    if not (rows.ok and cols.ok):
        return np.zeros((0, 0) if mode == CONV and weights is not None and weights.ndim == 3 else (0, 0, 0))
    ri, rin = window_indices(rows)
    ci, cin = window_indices(cols)
    ri_c = np.clip(ri, 0, values.shape[1] - 1)
    ci_c = np.clip(ci, 0, values.shape[2] - 1)
    taps = values[:, ri_c[:, None, :, None], ci_c[None, :, None, :]]  # (C, Oh, Ow, K, K)
    inside = (rin[:, None, :, None] & cin[None, :, None, :])[None]
    if mode == CONV:
        filters = weights[None] if weights.ndim == 3 else weights
        out = np.einsum("cijkl,fckl->fij", np.where(inside, taps, 0.0), filters)
        if bias is not None:
            out = out + np.asarray(bias, dtype=np.float64)[:, None, None]
        return out[0] if weights.ndim == 3 else out
    if mode == "max":
        return np.where(inside, taps, -np.inf).max(axis=(3, 4))
    total = np.where(inside, taps, 0.0).sum(axis=(3, 4)) if mode == "avg" else \
        np.where(inside, taps * taps, 0.0).sum(axis=(3, 4))
    p, s = rows.spec.pad_lo, cols.spec.pad_lo
    rpad = (ri >= -p) & (ri < rows.spec.size + rows.spec.padding_end)
    cpad = (ci >= -s) & (ci < cols.spec.size + cols.spec.padding_end)
    count = (rpad[:, None, :, None] & cpad[None, :, None, :]).sum(axis=(2, 3))
    if mode == "avg":
        return total / count
    k = rows.spec.kernel * cols.spec.kernel
    return np.sqrt(total / count * k)
