"""Words and formulas of the Convolution panel, as small HTML strings (no Qt, no torch).

Each builder takes the geometry of :mod:`convviz.core.geometry` (or a
:class:`~convviz.core.conv_probe.ConvProbe`) and says in plain language what the layer does
with those numbers; the widgets only place the strings.
"""
from __future__ import annotations

import math
import re

from convviz.core.geometry import POOL, AxisGeometry, AxisSpec, analyse_axis, fraction_text, ranges_text

OK, INFO, WARN, ERROR = "ok", "info", "warn", "error"
MINUS = "−"


def _n(value) -> str:
    """Number with a typographic minus sign."""
    return str(value).replace("-", MINUS)


def textbook_numbers(spec: AxisSpec) -> str:
    """``(7 − 3 + 2·0)/3 + 1`` with the live numbers (effective kernel when D > 1)."""
    k = spec.span
    return f"({spec.size} {MINUS} {k} + 2·{spec.pad_lo})/{spec.stride} + 1"


WORD_JOINER = "\u2060"  # invisible; forbids the line break Qt would otherwise allow after a "/"


def _keep(text: str) -> str:
    """``text`` on one line (a long formula then breaks only at an ``=`` between kept parts)."""
    return f"<nobr>{re.sub(r'(?<!<)/', '/' + WORD_JOINER, text)}</nobr>"


def formula_html(geom: AxisGeometry, channels: int = 1, filters: int = 1) -> str:
    """The textbook formula, PyTorch's exact rule and the resulting shapes, with live numbers."""
    s = geom.spec
    k_name = "K<sub>eff</sub>" if s.dilation > 1 else "K"
    lines = []
    if s.dilation > 1:
        lines.append(f"{_keep(f'Effective kernel K<sub>eff</sub> = D·(K {MINUS} 1) + 1')} = "
                     f"{_keep(f'{s.dilation}·({s.kernel} {MINUS} 1) + 1 = <b>{s.span}</b>')} "
                     f"(the {s.kernel} taps sit {s.dilation} cells apart)")
    exact = _n(fraction_text(geom.exact))
    lines.append(f"{_keep(f'O = (W {MINUS} {k_name} + 2P)/S + 1')} = "
                 f"{_keep(f'{textbook_numbers(s)} = <b>{exact}</b>')}")
    inner = (f"({s.size} + 2·{s.pad_lo} {MINUS} {s.dilation}·({s.kernel} {MINUS} 1) {MINUS} 1)/{s.stride}")
    result = f" = <b>{geom.output}</b>" if geom.ok else " → <b>refused</b>"
    if s.ceil_mode:
        rule = (f"{_keep(f'PyTorch, ceil_mode=True: O = ⌈(W + 2P {MINUS} D·(K{MINUS}1) {MINUS} 1)/S⌉ + 1')} = "
                f"{_keep(f'⌈{inner}⌉ + 1')}")
        raw = math.ceil((s.padded - s.span) / s.stride) + 1
        if geom.ok and raw != geom.output:
            rule += f" = {raw}, minus the window that would start in the right padding"
            lines.append(rule + result)
        else:
            lines.append(rule[:-len("</nobr>")] + result + "</nobr>")
    else:
        lines.append(f"{_keep(f'PyTorch: O = ⌊(W + 2P {MINUS} D·(K{MINUS}1) {MINUS} 1)/S⌋ + 1')} = "
                     f"{_keep(f'⌊{inner}⌋ + 1{result}')}")
    if geom.ok:
        o = geom.output
        if s.kind == POOL:
            lines.append(f"Shape: {s.size}×{s.size}×{channels} → <b>{o}×{o}×{channels}</b> "
                         f"(pooling keeps the channels and has no weights)")
        else:
            params = filters * (s.kernel * s.kernel * channels + 1)
            lines.append(f"Shape: {s.size}×{s.size}×{channels} input, {filters} filter{'s' * (filters > 1)} of "
                         f"{s.kernel}×{s.kernel}×{channels} → <b>{o}×{o}×{filters}</b> · "
                         f"{_keep(f'{filters}·({s.kernel}·{s.kernel}·{channels} + 1) = {params} weights')}")
    return "<br>".join(lines)


def _cells(indices) -> str:
    if not indices:
        return ""
    word = "row and column" if len(indices) == 1 else "rows and columns"
    return f"{word} {ranges_text(indices)}"


def note_html(geom: AxisGeometry) -> tuple[str, str]:
    """(level, html): what happens with these settings, in words; level is ok/info/warn/error."""
    s = geom.spec
    if not geom.ok:
        return ERROR, (f"<b>PyTorch refuses these settings:</b> {geom.error} "
                       f"Make W or P larger, or K or D smaller.")
    o = geom.output
    starts = ", ".join(str(v) for v in geom.starts[:8]) + (", …" if len(geom.starts) > 8 else "")
    if geom.is_whole:
        if geom.gaps:
            why = (f"stride {s.stride} is larger than the window ({s.span})" if s.stride > s.span
                   else "the dilated taps leave holes")
            return INFO, (f"{textbook_numbers(s)} = {o} is a whole number, but {why}: input "
                          f"{_cells(geom.gaps)} fall between taps and are <b>never read</b> (hatched).")
        return OK, (f"{textbook_numbers(s)} = {o} is a whole number: the windows tile the padded input "
                    f"exactly and every input cell is read.")
    head = (f"<b>{textbook_numbers(s)} = {fraction_text(geom.exact)} is not a whole number.</b> "
            f"The window starts at {starts} (every {s.stride} cells, counted from the padded edge); ")
    floor = _floor_story(geom)
    if s.kind == POOL and s.ceil_mode:
        last = geom.starts[-1]
        outside = [int(t) for t in geom.taps(len(geom.starts) - 1) if t >= s.padded]
        story = (f"<b>ceil_mode=True rounds up to {o}×{o}</b>: the last window starts at {last}, inside the input, "
                 f"and runs past the padded input — a <b>partial window</b> (dashed): its taps at "
                 f"{ranges_text(outside)} do not exist and are ignored, the max is taken over the rest. ")
        if geom.uncovered:
            story += f"Still never read: {_cells(geom.uncovered)}. "
        return WARN, head + story + f"Without ceil_mode (and in every Conv2d) {floor}"
    ceil = analyse_axis(AxisSpec(s.size, s.kernel, s.stride, s.pad_lo, s.pad_hi, s.dilation, POOL, True))
    if ceil.ok:
        alt = (f"<b>Pooling with ceil_mode=True</b> would keep a partial last window instead: "
               f"{ceil.output}×{ceil.output}" + (", nothing dropped." if not ceil.uncovered else
                                                f", still missing {_cells(ceil.uncovered)}."))
    else:
        alt = f"Pooling's ceil_mode is not available here: {ceil.error}"
    return WARN, head + f"<b>PyTorch floors</b>: {floor} " + alt


def _floor_story(geom: AxisGeometry) -> str:
    """What flooring costs: the output size and the dropped input rows/columns."""
    s = geom.spec
    floor_geom = geom if not s.ceil_mode else analyse_axis(
        AxisSpec(s.size, s.kernel, s.stride, s.pad_lo, s.pad_hi, s.dilation, s.kind, False))
    o = floor_geom.output
    nxt = o * s.stride
    text = (f"the output is {o}×{o}; the next window would start at {nxt} and need up to "
            f"{nxt + s.span - 1}, past the padded input (last index {s.padded - 1}). ")
    if floor_geom.trailing:
        shaded = " (hatched)" if floor_geom is geom else ""
        text += (f"Input {_cells(floor_geom.trailing)} are <b>never reached</b>{shaded} — "
                 f"those pixels are silently dropped.")
    else:
        text += "Only padding is left out, so no input pixel is lost."
    if floor_geom.gaps:
        text += f" Between taps, {_cells(floor_geom.gaps)} are skipped as well."
    return text


def toy_window_html(geom: AxisGeometry, values, weights, row: int, col: int, result: float, hovered: bool) -> str:
    """Readout of one toy output cell: the products (or the max) that make its value."""
    s = geom.spec
    label = f"{'Hovered' if hovered else 'Current'} output ({row}, {col})"
    terms = []  # (input value or None for padding, weight or None for pooling)
    for i, tr in enumerate(geom.taps(row)):
        for j, tc in enumerate(geom.taps(col)):
            if tr >= s.padded or tc >= s.padded:
                continue  # a ceil_mode partial window: this tap lies outside
            r, c = tr - s.pad_lo, tc - s.pad_lo
            value = values[0, r, c] if 0 <= r < s.size and 0 <= c < s.size else None
            terms.append((value, None if weights is None else weights[0, i, j]))
    channels = values.shape[0]
    if weights is None:
        shown = ", ".join("−∞" if v is None else f"{v:g}" for v, _ in terms[:12])
        shown += ", …" if len(terms) > 12 else ""
        missing = s.kernel * s.kernel - len(terms)
        extra = f" — {missing} taps lie outside the padded input and are ignored" if missing else ""
        over = f" (each of the {channels} channels separately)" if channels > 1 else ""
        return f"<b>{label}</b> = max({shown}){over} = <b>{result:g}</b>{extra}"
    if channels == 1 and len(terms) <= 9:
        body = " + ".join(f"{0 if v is None else v:g}·{_paren(w)}" for v, w in terms)
        return f"<b>{label}</b> = Σ inputs × weights = {body} = <b>{_n(f'{result:g}')}</b>"
    return (f"<b>{label}</b> = Σ of {channels * len(terms)} products ({channels} channel"
            f"{'s' * (channels > 1)} × {s.kernel}×{s.kernel} taps) = <b>{_n(f'{result:g}')}</b>")


def _paren(w) -> str:
    return f"({_n(f'{w:g}')})" if w < 0 else f"{w:g}"


def toy_input_html(geom: AxisGeometry, row: int, col: int, value: float, readers: list) -> str:
    """Readout for a hovered toy input cell: which outputs read it (or that none does)."""
    if not readers:
        return (f"<b>Input ({row}, {col})</b> = {value:g} is <b>never read</b> by any window — "
                f"PyTorch drops it.")
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
        if len(pairs) <= 9:
            body = " + ".join(f"{_n(f'{v:.3f}')}·{_paren(round(w, 3))}" for v, w in pairs)
            parts.append(f"input channel {selected_channel}: {body} = {_n(f'{probe.partial_sums[i]:.4f}')}")
    sums = ", ".join(f"c{c}: {_n(f'{v:.3f}')}" for c, v in zip(channels[:6], probe.partial_sums[:6]))
    more = f", … (+{len(channels) - 6} channels)" if len(channels) > 6 else ""
    parts.append(f"partial sums over {len(channels)} input channel{'s' * (len(channels) > 1)} × {n_taps} taps: "
                 f"{sums}{more}; bias {_n(f'{probe.bias:.4f}')}")
    padded = int((~probe.inside).sum())
    if padded:
        parts.append(f"{padded} of {n_taps} taps read padding")
    return head + "<br>" + "<br>".join(parts)
