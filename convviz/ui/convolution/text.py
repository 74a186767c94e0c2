"""Words and formulas of the Convolution panel, as small HTML strings (no Qt, no torch).

Each builder takes the geometry of :mod:`convviz.core.geometry` (or a
:class:`~convviz.core.conv_probe.ConvProbe`) and says in plain language what the layer does
with those numbers; the widgets only place the strings.
"""
from __future__ import annotations

import math
import re

from convviz.core.geometry import (LAYER_NAMES, POOL, AxisGeometry, AxisSpec, analyse_axis, fraction_text,
                                   ranges_text)

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


def layer_name(spec: AxisSpec) -> str:
    """``Conv2d``, ``MaxPool2d``, ``AvgPool2d`` or ``LPPool2d``."""
    return LAYER_NAMES[spec.mode]


def _ceil_raw(geom: AxisGeometry) -> int:
    """⌈exact⌉: torch's ceil_mode output before the window starting in the right padding is dropped."""
    return math.ceil(geom.exact)


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
            lines.append(f"Shape: {s.size}×{s.size}×{channels} → <b>{o}×{o}×{channels}</b>: {layer_name(s)} "
                         f"pools each channel on its own and has no parameters")
        else:
            params = filters * (s.kernel * s.kernel * channels + 1)
            lines.append(f"Shape: {s.size}×{s.size}×{channels} input, {filters} filter{'s' * (filters > 1)} of "
                         f"{s.kernel}×{s.kernel}×{channels} → <b>{o}×{o}×{filters}</b> · "
                         f"{_keep(f'{filters}·({s.kernel}·{s.kernel}·{channels} + 1) = {params} parameters')} "
                         f"(weights + biases)")
    return "<br>".join(lines)


def output_caption(geom: AxisGeometry, depth: int = 1) -> tuple[str, str]:
    """(title, detail) of the output grid: its size and how the fraction was rounded."""
    if not geom.ok:
        return "<b>Output</b>: none", "PyTorch refuses"
    o = geom.output
    title = f"<b>Output</b> {o}×{o}" + (f"×{depth}" if depth > 1 else "")
    if geom.is_whole:
        return title, "one per window"
    fraction = f"{geom.exact.numerator}/{geom.exact.denominator}"
    if geom.spec.ceil_mode:
        raw = _ceil_raw(geom)
        if raw != o:
            return title, f"⌈{fraction}⌉ = {raw}, last window starts in the padding: dropped → {o}"
        return title, f"⌈{fraction}⌉ = {o}, ceil_mode"
    return title, f"⌊{fraction}⌋ = {o}, floored"


def _cells(indices) -> str:
    if not indices:
        return ""
    word = "row and column" if len(indices) == 1 else "rows and columns"
    return f"{word} {ranges_text(indices)}"


def _advice(geom: AxisGeometry) -> str:
    """What to change when torch refuses: depends on which rule failed."""
    s, error = geom.spec, geom.error
    if "half the kernel" in error:
        return f" Make P at most K/2 = {s.kernel // 2}, or K larger."
    if any(word in error for word in ("whole number", "no dilation", "no padding", "ceil_mode exists", "unknown")):
        return ""
    if s.kind == POOL:
        more_p = f", P larger (up to K/2 = {s.kernel // 2})" if max(s.pad_lo, s.padding_end) < s.kernel // 2 else ""
        ceil = "" if s.ceil_mode else " (or ceil_mode=True, if it keeps a partial window)"
        return f" Make W larger{more_p}, or K or D smaller{ceil}."
    return " Make W or P larger, or K or D smaller."


def note_html(geom: AxisGeometry) -> tuple[str, str]:
    """(level, html): what happens with these settings, in words; level is ok/info/warn/error."""
    s = geom.spec
    if not geom.ok:
        return ERROR, f"<b>PyTorch refuses these settings:</b> {geom.error}{_advice(geom)}"
    o = geom.output
    starts = ", ".join(str(v) for v in geom.starts[:8]) + (", …" if len(geom.starts) > 8 else "")
    if geom.is_whole:
        if geom.gaps:
            why = (f"stride {s.stride} is larger than the window ({s.span})" if s.stride > s.span
                   else "the dilated taps leave holes")
            return INFO, (f"{textbook_numbers(s)} = {o} is a whole number, but {why}: input "
                          f"{_cells(geom.gaps)} fall between taps and are <b>never read</b> (hatched).")
        if s.stride == s.span:
            how = "the windows tile the padded input exactly, side by side"
        elif s.stride < s.span and o > 1:
            how = (f"the windows overlap (stride {s.stride} &lt; window {s.span}) and the last one ends exactly at "
                   f"the end of the padded input")
        else:
            how = "the window covers the padded input exactly"
        return OK, f"{textbook_numbers(s)} = {o} is a whole number: {how}, and every input cell is read."
    head = (f"<b>{textbook_numbers(s)} = {fraction_text(geom.exact)} is not a whole number.</b> "
            f"The window starts at {starts} (every {s.stride} cells, counted from the padded edge); ")
    floor = _floor_story(geom)
    if s.kind == POOL and s.ceil_mode:
        if o == _ceil_raw(geom):
            last = geom.starts[-1]
            outside = [int(t) for t in geom.taps(len(geom.starts) - 1) if t >= s.padded]
            story = (f"<b>ceil_mode=True rounds up to {o}×{o}</b>: the last window starts at {last}, inside the "
                     f"input or its left padding, and runs past the padded input — a <b>partial window</b> "
                     f"(dashed): its taps at {ranges_text(outside)} do not exist and are ignored; "
                     f"{_partial_rule(s)} ")
            if geom.uncovered:
                story += f"Still never read: {_cells(geom.uncovered)}. "
            return WARN, head + story + f"Without ceil_mode (and in every Conv2d) {floor}"
        raw, dropped = _ceil_raw(geom), (_ceil_raw(geom) - 1) * s.stride
        story = (f"<b>ceil_mode=True would round up to {raw}</b>, but that last window would start at {dropped}, in "
                 f"the right padding (the input and its left padding end at {s.size + s.pad_lo - 1}). Torch keeps a "
                 f"window only if it starts inside the input or the left padding, so it is dropped: the output "
                 f"stays {o}×{o}, as without ceil_mode. {_loss(geom)}")
        return WARN, head + story
    pool = s.pool if s.kind == POOL else "max"
    ceil = analyse_axis(AxisSpec(s.size, s.kernel, s.stride, s.pad_lo, s.pad_hi, s.dilation, POOL, True, pool))
    layer = LAYER_NAMES[pool]
    if not ceil.ok:
        alt = f"{layer}'s ceil_mode is not available here: {ceil.error}"
    elif ceil.output == o:
        alt = (f"{layer} with ceil_mode=True would not help: its extra window would start in the right padding, "
               f"and torch drops such a window.")
    else:
        alt = (f"<b>{layer} with ceil_mode=True</b> would keep a partial last window instead: "
               f"{ceil.output}×{ceil.output}" + (", nothing dropped." if not ceil.uncovered else
                                                f", still missing {_cells(ceil.uncovered)}."))
    return WARN, head + f"<b>PyTorch floors</b>: {floor} " + alt


def _partial_rule(spec: AxisSpec) -> str:
    if spec.pool == "max":
        return "the max is taken over the rest."
    if spec.pool == "avg":
        return "the average divides by the taps that exist."
    return "LPPool2d scales the mean of x² over the taps that exist by K², as if the window were full."


def _floor_story(geom: AxisGeometry) -> str:
    """What flooring costs: the output size and the dropped input rows/columns."""
    s = geom.spec
    floor_geom = geom if not s.ceil_mode else analyse_axis(
        AxisSpec(s.size, s.kernel, s.stride, s.pad_lo, s.pad_hi, s.dilation, s.kind, False, s.pool))
    if not floor_geom.ok:
        return f"torch refuses these settings: {floor_geom.error}"
    o = floor_geom.output
    nxt = o * s.stride
    return (f"the output is {o}×{o}; the next window would start at {nxt} and need up to "
            f"{nxt + s.span - 1}, past the padded input (last index {s.padded - 1}). " + _loss(floor_geom, geom))


def _loss(floor_geom: AxisGeometry, shown: AxisGeometry | None = None) -> str:
    """Which input cells the floored windows never reach (hatched when that geometry is the one shown)."""
    shown = floor_geom if shown is None else shown
    if floor_geom.trailing:
        shaded = " (hatched)" if floor_geom is shown else ""
        text = (f"Input {_cells(floor_geom.trailing)} are <b>never reached</b>{shaded} — "
                f"those pixels are silently dropped.")
    else:
        text = "Only padding is left out, so no input pixel is lost."
    if floor_geom.gaps:
        text += f" Between taps, {_cells(floor_geom.gaps)} are skipped as well."
    return text
