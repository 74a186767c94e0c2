"""The worked arithmetic behind one output value, as small HTML strings (no Qt, no torch).

Toy grid: a convolution is shown channel by channel — the selected input channel's
products in full, every channel's partial sum, then the sum **plus the bias** (as CNN
Explainer does); pooling is per channel (max, mean or √Σx² of that channel's window).
Real layer: the same per-channel story from a :class:`~convviz.core.geometry.conv_probe.ConvProbe`.
"""
from __future__ import annotations

import numpy as np

from convviz.core.geometry.arithmetic import CONV, AxisGeometry
from convviz.ui.convolution.text import unread_parts

MINUS = "−"
FULL_PRODUCTS = 25  # a channel's products are written out up to this many taps (5×5)
SHOWN_CHANNELS = 8


def _n(value) -> str:
    """Number with a typographic minus sign."""
    return str(value).replace("-", MINUS)


def num(value: float) -> str:
    """Whole numbers as such, others with 2 decimals (``2.33``), typographic minus."""
    value = float(value)
    if value.is_integer():
        return _n(f"{value:g}")
    return _n(f"{value:.2f}")


def _paren(w) -> str:
    return f"({_n(f'{w:g}')})" if w < 0 else f"{w:g}"


def window_terms(geom: AxisGeometry, values: np.ndarray, row: int, col: int):
    """(C, n) values under window (row, col) — NaN where a tap reads padding — and the (n,)
    flat kernel positions of the taps that exist (a ceil_mode partial window has fewer)."""
    s = geom.spec
    vals, keep = [], []
    for i, tr in enumerate(geom.taps(row)):
        for j, tc in enumerate(geom.taps(col)):
            if tr >= s.padded or tc >= s.padded:
                continue
            r, c = tr - s.pad_lo, tc - s.pad_lo
            inside = 0 <= r < s.size and 0 <= c < s.size
            vals.append(values[:, r, c] if inside else np.full(values.shape[0], np.nan))
            keep.append(i * s.kernel + j)
    return np.array(vals).T.reshape(values.shape[0], -1), np.array(keep, dtype=int)


def toy_window_html(geom: AxisGeometry, values, weights, bias, row: int, col: int, result: float,
                    hovered: bool, channel: int = 0, filt: int = 0) -> str:
    """Readout of one toy output cell: per-channel products and sums + bias (conv), or the
    max / mean / √Σx² of one channel's window (pooling)."""
    s = geom.spec
    terms, keep = window_terms(geom, values, row, col)
    where = f"{'Hovered' if hovered else 'Current'} output ({row}, {col})"
    if s.mode != CONV:
        return f"<b>{where}</b>, channel {channel} = " + _pool_text(geom, terms[channel], keep, result)
    channels = values.shape[0]
    w = weights[filt].reshape(channels, -1)[:, keep]  # (C, n)
    x = np.nan_to_num(terms, nan=0.0)  # padding reads zeros
    partial = (x * w).sum(axis=1)
    b = float(bias[filt]) if bias is not None else 0.0
    label = f"<b>{where}</b>" + (f" of filter {filt}" if weights.shape[0] > 1 else "")
    products = _products(terms[channel], w[channel])
    if channels == 1:
        return f"{label} = Σ inputs × weights + bias = {products} + {_paren(b)} = <b>{num(result)}</b>"
    lines = [f"{label}: each input channel's window × its slice of the filter, then the sum plus the bias",
             f"channel {channel}: {products} = <b>{num(partial[channel])}</b>"]
    shown = ", ".join(f"c{c}: {num(v)}" for c, v in list(enumerate(partial))[:SHOWN_CHANNELS])
    more = ", …" if channels > SHOWN_CHANNELS else ""
    total = " + ".join(_paren(v) for v in partial[:SHOWN_CHANNELS]) + (" + …" if more else "")
    lines.append(f"per channel: {shown}{more} → Σ = {total} = {num(partial.sum())}; "
                 f"+ bias {_paren(b)} = <b>{num(result)}</b>")
    return "<br>".join(lines)


def _products(values: np.ndarray, weights: np.ndarray) -> str:
    """``1·1 + 0·(−1) + …`` (padding shown as 0), or a row-wise summary for big kernels."""
    if len(values) <= FULL_PRODUCTS:
        return " + ".join(f"{0 if np.isnan(v) else v:g}·{_paren(w)}" for v, w in zip(values, weights))
    return f"Σ of {len(values)} products"


def _pool_text(geom: AxisGeometry, values: np.ndarray, keep: np.ndarray, result: float) -> str:
    s = geom.spec
    missing = s.kernel * s.kernel - len(values)
    extra = f" — {missing} taps lie outside the padded input and are ignored" if missing else ""
    if s.pool == "max":
        shown = ", ".join("−∞" if np.isnan(v) else f"{v:g}" for v in values[:16]) + (", …" if len(values) > 16 else "")
        return f"max({shown}) = <b>{num(result)}</b>{extra}"
    if s.pool == "avg":
        shown = " + ".join("0" if np.isnan(v) else f"{v:g}" for v in values[:16]) + (" + …" if len(values) > 16 else "")
        return f"({shown})/{len(values)} = <b>{num(result)}</b>{extra}"
    squares = " + ".join(f"{v:g}²" for v in values[:16]) + (" + …" if len(values) > 16 else "")
    total = float(np.nansum(values * values))
    if missing:
        k2 = s.kernel * s.kernel
        return (f"√({k2}/{len(values)} · ({squares})) = √({k2}/{len(values)} · {total:g}) = <b>{num(result)}</b>"
                f"{extra}; torch scales the partial window to a full one")
    return f"√({squares}) = √{total:g} = <b>{num(result)}</b>"


UNREAD_REASONS = {"between_windows": "it lies between two windows (stride &gt; window)",
                  "between_taps": "it falls between a window's dilated taps",
                  "after_last": "it comes after the last window ends"}


def unread_reason(geom: AxisGeometry, row: int, col: int) -> str:
    """Why no tap reads input (row, col): the computed cause along the row or column axis."""
    parts = unread_parts(geom)
    for index in (row, col):
        for key, cells in parts.items():
            if index in cells:
                return UNREAD_REASONS[key]
    return "no window's tap lands on it"


def toy_input_html(geom: AxisGeometry, row: int, col: int, value: float, readers: list) -> str:
    """Readout for a hovered toy input cell: which outputs read it (or that none does)."""
    if not readers:
        return (f"<b>Input ({row}, {col})</b> = {value:g} is <b>never read</b>: {unread_reason(geom, row, col)}; "
                f"no output depends on it.")
    shown = ", ".join(f"({r}, {c})" for r, c in readers[:8]) + (", …" if len(readers) > 8 else "")
    cells = f"output cell{'s' * (len(readers) > 1)}"
    return f"<b>Input ({row}, {col})</b> = {value:g} is read by {len(readers)} {cells}: {shown}"


def probe_html(name: str, probe, selected_channel: int | None = None) -> str:
    """``Σ inputs × weights + bias = value (model: value)`` for a real layer, per input channel."""
    n_taps = probe.windows.shape[1] * probe.windows.shape[2]
    head = (f"<b>{name}</b> · output channel {probe.out_channel}, row {probe.row}, column {probe.col}<br>"
            f"Σ inputs × weights + bias = <b>{probe.total:.5f}</b> (model: <b>{probe.model_value:.5f}</b>, "
            f"difference {probe.error:.1e})")
    parts = []
    channels = list(probe.in_channels)
    if selected_channel in channels:
        i = channels.index(selected_channel)
        pairs = list(zip(probe.windows[i].ravel(), probe.weights[i].ravel()))
        if len(pairs) <= FULL_PRODUCTS:
            body = " + ".join(f"{_n(f'{v:.3f}')}·{_paren(round(w, 3))}" for v, w in pairs)
        else:
            body = f"Σ of {len(pairs)} products"
        parts.append(f"input channel {selected_channel}: {body} = {_n(f'{probe.partial_sums[i]:.4f}')}")
    sums = ", ".join(f"c{c}: {_n(f'{v:.3f}')}" for c, v in zip(channels[:6], probe.partial_sums[:6]))
    more = f", … (+{len(channels) - 6} channels)" if len(channels) > 6 else ""
    parts.append(f"partial sums over {len(channels)} input channel{'s' * (len(channels) > 1)} × {n_taps} taps: "
                 f"{sums}{more}; Σ = {_n(f'{probe.partial_sums.sum():.4f}')}, + bias {_n(f'{probe.bias:.4f}')}")
    padded = int((~probe.inside).sum())
    if padded:
        parts.append(f"{padded} of {n_taps} taps read padding")
    return head + "<br>" + "<br>".join(parts)
