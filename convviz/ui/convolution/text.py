"""Words and formulas of the Convolution panel, as small HTML strings (no Qt, no torch).

Each builder takes the geometry of :mod:`convviz.core.geometry.arithmetic` (or a
:class:`~convviz.core.geometry.conv_probe.ConvProbe`) and says in plain language what the layer does
with those numbers; the widgets only place the strings.
"""
from __future__ import annotations

import math
import re

from convviz.core.geometry.arithmetic import (LAYER_NAMES, POOL, AxisGeometry, AxisSpec, analyse_axis, fraction_text,
                                   ranges_text)

OK, INFO, WARN, ERROR = "ok", "info", "warn", "error"
MINUS = "−"


def _n(value) -> str:
    """Number with a typographic minus sign."""
    return str(value).replace("-", MINUS)


def textbook_numbers(spec: AxisSpec) -> str:
    """``(7 − 3 + 2·0)/3 + 1`` with the live numbers (effective kernel when D > 1); uneven padding
    (TF "SAME") as ``+ 0 + 1``."""
    k = spec.span
    pad = f"2·{spec.pad_lo}" if spec.pad_lo == spec.padding_end else f"{spec.pad_lo} + {spec.padding_end}"
    return f"({spec.size} {MINUS} {k} + {pad})/{spec.stride} + 1"


def window_place(spec: AxisSpec, start: int) -> str:
    """Where a window starting at padded index ``start`` begins: in the left padding, inside the input,
    in the right padding, or past the end of the (padded) input."""
    if start < spec.pad_lo:
        return "in the left padding"
    if start < spec.size + spec.pad_lo:
        return "inside the input"
    if start < spec.padded:
        return "in the right padding"
    return "past the end of the padded input" if spec.padding_end else "past the end of the input (there is no padding)"


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
    p_sym = "2P" if s.pad_lo == s.padding_end else "P<sub>before</sub> + P<sub>after</sub>"
    lines.append(f"{_keep(f'O = (W {MINUS} {k_name} + {p_sym})/S + 1')} = "
                 f"{_keep(f'{textbook_numbers(s)} = <b>{exact}</b>')}")
    pads = f"2·{s.pad_lo}" if s.pad_lo == s.padding_end else f"{s.pad_lo} + {s.padding_end}"
    inner = (f"({s.size} + {pads} {MINUS} {s.dilation}·({s.kernel} {MINUS} 1) {MINUS} 1)/{s.stride}")
    result = f" = <b>{geom.output}</b>" if geom.ok else " → <b>refused</b>"
    if s.ceil_mode:
        rule = (f"{_keep(f'PyTorch, ceil_mode=True: O = ⌈(W + 2P {MINUS} D·(K{MINUS}1) {MINUS} 1)/S⌉ + 1')} = "
                f"{_keep(f'⌈{inner}⌉ + 1')}")
        raw = math.ceil((s.padded - s.span) / s.stride) + 1
        if geom.ok and raw != geom.output:
            rule += f" = {raw}, minus the window that would start {window_place(s, (raw - 1) * s.stride)}"
            lines.append(rule + result)
        else:
            lines.append(rule[:-len("</nobr>")] + result + "</nobr>")
    else:
        lines.append(f"{_keep(f'PyTorch: O = ⌊(W + {p_sym} {MINUS} D·(K{MINUS}1) {MINUS} 1)/S⌋ + 1')} = "
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
            where = window_place(geom.spec, (raw - 1) * geom.spec.stride).replace(" (there is no padding)", "")
            return title, f"⌈{fraction}⌉ = {raw}, its last window would start {where}: dropped → {o}"
        return title, f"⌈{fraction}⌉ = {o}, ceil_mode"
    return title, f"⌊{fraction}⌋ = {o}, floored"


def _cells(indices) -> str:
    if not indices:
        return ""
    word = "row and column" if len(indices) == 1 else "rows and columns"
    return f"{word} {ranges_text(indices)}"


def _advice(geom: AxisGeometry) -> str:
    """What to change when torch refuses: only changes the layer can make, and that help."""
    s, error = geom.spec, geom.error
    if "half the kernel" in error:
        return f" Make P at most K/2 = {s.kernel // 2}, or K larger."
    if any(word in error for word in ("whole number", "no dilation", "no padding", "ceil_mode exists", "unknown")):
        return ""
    options = ["W larger"]
    if s.kind == POOL:
        if s.pool != "l2" and max(s.pad_lo, s.padding_end) < s.kernel // 2:
            options.append(f"P larger (up to K/2 = {s.kernel // 2})")
    else:
        options.append("P larger")
    if s.kernel > 1:
        options.append("K smaller")
    if s.dilation > 1:
        options.append("D smaller")
    text = " Make " + ", ".join(options[:-1]) + (" or " if len(options) > 1 else "") + options[-1]
    if s.kind == POOL and not s.ceil_mode:
        ceil = analyse_axis(AxisSpec(s.size, s.kernel, s.stride, s.pad_lo, s.pad_hi, s.dilation, POOL, True, s.pool))
        if ceil.ok:
            text += f", or set ceil_mode=True (it keeps a partial window: {ceil.output}×{ceil.output})"
    return text + "."


def unread_parts(geom: AxisGeometry) -> dict[str, tuple[int, ...]]:
    """The input cells no tap reads, by where they lie: ``between_windows`` (no window's span covers
    them: the stride is longer than the window), ``between_taps`` (inside a window's span, between its
    dilated taps) and ``after_last`` (past the last window's end)."""
    s = geom.spec
    if not geom.ok or not geom.uncovered:
        return {}
    spans = [(start, start + s.span - 1) for start in geom.starts]
    end = spans[-1][1]
    parts: dict[str, list[int]] = {"between_windows": [], "between_taps": [], "after_last": []}
    for i in geom.uncovered:
        padded = i + s.pad_lo
        if padded > end:
            parts["after_last"].append(i)
        elif any(lo <= padded <= hi for lo, hi in spans):
            parts["between_taps"].append(i)
        else:
            parts["between_windows"].append(i)
    return {k: tuple(v) for k, v in parts.items() if v}


def _verb(cells, verb: str) -> str:
    """``lie`` for several cells, ``lies`` for one."""
    return verb if len(cells) > 1 else verb + "s"


def _unread_text(geom: AxisGeometry, hatched: bool = True) -> str:
    """``input rows and columns 1, 3 are never read (hatched): …`` with each group's computed reason."""
    s, parts = geom.spec, unread_parts(geom)
    reasons = []
    if "between_windows" in parts:
        cells = parts["between_windows"]
        reasons.append(f"{ranges_text(cells)} {_verb(cells, 'lie')} between windows (stride {s.stride} &gt; window "
                       f"span {s.span})")
    if "between_taps" in parts:
        cells = parts["between_taps"]
        reasons.append(f"{ranges_text(cells)} {_verb(cells, 'fall')} between the dilated taps (D = {s.dilation})")
    if "after_last" in parts:
        cells = parts["after_last"]
        reasons.append(f"{ranges_text(cells)} {_verb(cells, 'come')} after the last window ends")
    return (f"input {_cells(geom.uncovered)} are <b>never read</b>{' (hatched)' if hatched else ''}: "
            + "; ".join(reasons) + ".")


def note_html(geom: AxisGeometry) -> tuple[str, str]:
    """(level, html): what happens with these settings, in words; level is ok/info/warn/error."""
    s = geom.spec
    if not geom.ok:
        return ERROR, f"<b>PyTorch refuses these settings:</b> {geom.error}{_advice(geom)}"
    o = geom.output
    starts = ", ".join(str(v) for v in geom.starts[:8]) + (", …" if len(geom.starts) > 8 else "")
    if geom.is_whole:
        if geom.uncovered:
            return INFO, f"{textbook_numbers(s)} = {o} is a whole number, but {_unread_text(geom)}"
        if s.stride == s.span:
            how = "the windows tile the padded input exactly, side by side"
        elif s.stride < s.span and o > 1:
            how = (f"the windows overlap (stride {s.stride} &lt; window {s.span}) and the last one ends exactly at "
                   f"the end of the padded input")
        elif s.stride > s.span and o > 1:
            how = (f"the windows skip cells between them (stride {s.stride} &gt; window {s.span}), only padding "
                   f"cells here, and the last one ends exactly at the end of the padded input")
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
            story = (f"<b>ceil_mode=True rounds up to {o}×{o}</b>: the last window starts at {last}, "
                     f"{window_place(s, last)}, and runs past the padded input — a <b>partial window</b> "
                     f"(dashed): its taps at {ranges_text(outside)} do not exist and are ignored; "
                     f"{_partial_rule(s)} ")
            if geom.uncovered:
                story += f"Still, {_unread_text(geom)} "
            return WARN, head + story + f"Without ceil_mode (and in every Conv2d) {floor}"
        raw, dropped = _ceil_raw(geom), (_ceil_raw(geom) - 1) * s.stride
        story = (f"<b>ceil_mode=True would round up to {raw}</b>, but that last window would start at {dropped}, "
                 f"{window_place(s, dropped)} ({_left_end(s)}). Torch keeps a "
                 f"window only if it starts inside the input or the left padding, so it is dropped: the output "
                 f"stays {o}×{o}, as without ceil_mode. {_loss(geom)}")
        return WARN, head + story
    pool = s.pool if s.kind == POOL else "max"
    ceil = analyse_axis(AxisSpec(s.size, s.kernel, s.stride, s.pad_lo, s.pad_hi, s.dilation, POOL, True, pool))
    layer = LAYER_NAMES[pool]
    if not ceil.ok:
        alt = f"{layer}'s ceil_mode is not available here: {ceil.error}"
    elif ceil.output == o:
        extra = (_ceil_raw(ceil) - 1) * s.stride
        alt = (f"{layer} with ceil_mode=True would not help: its extra window would start at {extra}, "
               f"{window_place(s, extra)}, and torch drops such a window.")
    else:
        alt = (f"<b>{layer} with ceil_mode=True</b> would keep a partial last window instead: "
               f"{ceil.output}×{ceil.output}" + (", nothing dropped." if not ceil.uncovered else
                                                f", still missing {_cells(ceil.uncovered)}."))
    return WARN, head + f"<b>PyTorch floors</b>: {floor} " + alt


def _left_end(spec: AxisSpec) -> str:
    """``the input and its left padding end at 8`` (``the input ends at 6`` without padding)."""
    last = spec.size + spec.pad_lo - 1
    return f"the input and its left padding end at {last}" if spec.pad_lo else f"the input ends at {last}"


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
    past = "padded input" if s.pad_lo + s.padding_end else "input"
    return (f"the output is {o}×{o}; the next window would start at {nxt} and need up to "
            f"{nxt + s.span - 1}, past the {past} (last index {s.padded - 1}). " + _loss(floor_geom, geom))


def _loss(floor_geom: AxisGeometry, shown: AxisGeometry | None = None) -> str:
    """Which input cells the floored windows never read (hatched when that geometry is the one shown)."""
    shown = floor_geom if shown is None else shown
    if not floor_geom.uncovered:
        return "Every input cell is still read: only padding is left out."
    text = _unread_text(floor_geom, hatched=floor_geom is shown)
    return text[0].upper() + text[1:]


def tf_same_html(spec: AxisSpec) -> str:
    """The TF / ONNX SAME rule with the live numbers, and what PyTorch does about it."""
    w, k, s, d = spec.size, spec.kernel, spec.stride, spec.dilation
    o = -(-w // s)
    total = spec.pad_lo + spec.padding_end
    rule = (f"<b>TF / ONNX SAME</b>: output ⌈W/S⌉ = ⌈{w}/{s}⌉ = <b>{o}</b>; total padding = "
            f"max((⌈W/S⌉ {MINUS} 1)·S + D·(K {MINUS} 1) + 1 {MINUS} W, 0) = "
            f"max({o - 1}·{s} + {d}·{k - 1} + 1 {MINUS} {w}, 0) = <b>{total}</b>; before = ⌊{total}/2⌋ = "
            f"<b>{spec.pad_lo}</b>, after = the rest = <b>{spec.padding_end}</b>.")
    if spec.pad_lo != spec.padding_end:
        shape = "uneven: the extra cell after (bottom / right)"
    else:
        shape = f"even here: {spec.pad_lo} each side"
    if s > 1:
        torch_says = (f"PyTorch refuses Conv2d(padding='same') at stride &gt; 1; pad first: nn.ZeroPad2d(("
                      f"{spec.pad_lo}, {spec.padding_end}, {spec.pad_lo}, {spec.padding_end})) + Conv2d(padding=0), "
                      f"as timm's Conv2dSame does.")
    else:
        torch_says = ("At stride 1 PyTorch's Conv2d(padding='same') pads just this; the article's symmetric "
                      "D·(K − 1)/2 per side exists only when the total is even.")
    return f"{rule} Ring {shape}. {torch_says}"
