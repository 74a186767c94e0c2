"""Every claim the toy grid's captions, notes and buttons make, checked against torch over the whole
settings grid: W 1–12, K 1–7, S 1–4, P 0–3, D 1–3, Conv2d / MaxPool2d / AvgPool2d / LPPool2d,
ceil_mode off and on, and the TF / ONNX SAME padding rule (no Qt needed).

Torch is the oracle for which input cells are read: the layer runs on a batch of one-hot inputs (one
per input row; the second axis has kernel 1), and a row is read exactly when its output is non-zero.
"""
import itertools
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convviz.core.geometry.arithmetic import analyse_axis, pool_same_padding, ranges_text, tf_same_spec, toy_spec
from convviz.ui.convolution.arithmetic import UNREAD_REASONS, unread_reason
from convviz.ui.convolution.text import MINUS, formula_html, note_html, output_caption, tf_same_html, unread_parts

WS, KS, SS, PS, DS = range(1, 13), range(1, 8), range(1, 5), range(0, 4), range(1, 4)
MODES = ("conv", "max", "avg", "l2")


def _layer(mode, k, s, p, d, ceil):
    """The torch layer along one axis (the other has kernel 1), or None when it has no such argument."""
    if mode == "conv":
        if ceil:
            return None
        layer = nn.Conv2d(1, 1, (k, 1), (s, 1), (p, 0), (d, 1), bias=False)
        nn.init.ones_(layer.weight)
        return layer
    if mode == "max":
        return nn.MaxPool2d((k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=ceil)
    if d > 1 or (mode == "l2" and p):
        return None
    if mode == "avg":
        return nn.AvgPool2d((k, 1), (s, 1), (p, 0), ceil_mode=ceil)
    return nn.LPPool2d(2, (k, 1), (s, 1), ceil_mode=ceil)


def _one_hot(w):
    return torch.eye(w).view(w, 1, w, 1)


@torch.no_grad()
def torch_facts(layer, w, pre=None):
    """(output size, input rows read) as torch computes them, or None when torch refuses.
    ``pre``: (before, after) padding added with F.pad first (TF SAME)."""
    if layer is None:
        return None
    x = _one_hot(w)
    if pre is not None:
        x = F.pad(x, (0, 0, *pre))
    try:
        out = layer(x)
    except RuntimeError:
        return None
    if out.shape[2] < 1:
        return None
    read = tuple(i for i in range(w) if bool((out[i] > 0).any()))
    return out.shape[2], read


def _dropped_start(w, k, s, p, d):
    """Where ceil_mode's extra window would start (padded coordinates)."""
    raw = math.ceil((w + 2 * p - d * (k - 1) - 1) / s) + 1
    return (raw - 1) * s


def _check(case, mode, w, k, s, p, d, ceil, facts):
    geom = analyse_axis(toy_spec(mode, w, k, s, p, d, ceil))
    level, note = note_html(geom)
    title, detail = output_caption(geom)
    formula = formula_html(geom)
    if facts is None:
        assert level == "error" and "refuses" in note and detail == "PyTorch refuses", case
        if mode == "l2":
            assert "P larger" not in note, case  # LPPool2d has no padding argument
        if d == 1:
            assert "D smaller" not in note, case
        if mode in ("avg", "l2"):
            assert "D smaller" not in note, case
        if k == 1:
            assert "K smaller" not in note, case
        found = re.search(r"set ceil_mode=True \(it keeps a partial window: (\d+)×", note)
        if found:
            assert torch_facts(_layer(mode, k, s, p, d, True), w)[0] == int(found.group(1)), case
        return "refused"
    size, read = facts
    unread = tuple(i for i in range(w) if i not in read)
    assert level != "error" and f"{size}×{size}" in title, case
    assert geom.output == size and geom.uncovered == unread, case  # the geometry that the words come from
    if "every input cell is read" in note or "Every input cell is still read" in note:
        assert not unread, case
    _check_read_claims(case, geom, note, unread)
    for text in (note, detail, formula):
        if "in the right padding" in text:
            start = _dropped_start(w, k, s, p, d)
            assert p > 0 and w + p <= start < w + 2 * p, case
        if "past the end of the input (there is no padding)" in text:
            assert p == 0, case
        if "past the end of the padded input" in text:
            assert p > 0 and _dropped_start(w, k, s, p, d) >= w + 2 * p, case
    if "dropped" in detail:
        assert ceil and math.ceil(geom.exact) > size, case
    kept = re.search(r"the last window starts at (\d+), (in the left padding|inside the input),", note)
    if kept:  # ceil_mode's partial window: where torch's last window really starts
        start = (size - 1) * s
        assert int(kept.group(1)) == start and (start < p) == (kept.group(2) == "in the left padding"), case
    if ceil and size > math.floor(geom.exact):
        assert kept, case
    return "unread" if unread else "all read"


def _check_read_claims(case, geom, note, unread):
    """The read / never-read sentences and how the windows lie, against torch's unread cells."""
    s = geom.spec
    o, span, stride = geom.output, s.span, s.stride
    if "every input cell is read" in note or "Every input cell is still read" in note:
        assert not unread, case
    if unread:
        assert f"{ranges_text(unread)} are <b>never read</b> (hatched)" in note, case
        parts = unread_parts(geom)
        assert sorted(i for cells in parts.values() for i in cells) == list(unread), case
        if "between_windows" in parts:
            assert stride > span and "between windows (stride" in note, case
        if "between_taps" in parts:
            assert s.dilation > 1 and "between the dilated taps" in note, case
        if "after_last" in parts:  # past the end of torch's last window
            assert min(parts["after_last"]) + s.pad_lo >= (o - 1) * stride + span, case
        reasons = {key: UNREAD_REASONS[key] for key in parts}  # the hover readout of an unread cell
        assert all(unread_reason(geom, i, i) == reasons[next(k for k, c in parts.items() if i in c)]
                   for i in unread), case
    else:
        assert "(hatched)" not in note, case  # only cells of the shown geometry are hatched
    if "is a whole number" in note:
        assert geom.is_whole and (o - 1) * stride + span == s.padded, case
    if "tile the padded input exactly" in note:
        assert stride == span and o * stride == s.padded, case
    if "the windows overlap" in note:
        assert stride < span and o > 1, case
    if "skip cells between them" in note:
        assert stride > span and o > 1, case
    if "the window covers the padded input exactly" in note:
        assert o == 1 and span == s.padded, case


@pytest.mark.parametrize("mode", MODES)
def test_toy_claims_agree_with_torch_over_the_grid(mode):
    seen, count = set(), 0
    for w, k, s, p, d, ceil in itertools.product(WS, KS, SS, PS, DS, (False, True)):
        if mode == "conv" and ceil:
            continue
        case = (mode, w, k, s, p, d, ceil)
        seen.add(_check(case, mode, w, k, s, p, d, ceil, torch_facts(_layer(mode, k, s, p, d, ceil), w)))
        count += 1
    assert count >= 4000 and {"refused", "unread", "all read"} <= seen


@pytest.mark.parametrize("pool", ["max", "avg", "l2"])
def test_pooling_same_padding_is_one_torch_accepts(pool):
    """Pooling has no padding='same': the button sets only a P torch accepts that keeps W×W, or says none does."""
    for w, k, s, d, ceil in itertools.product(WS, KS, SS, DS, (False, True)):
        if pool != "max" and d > 1:
            continue
        same = pool_same_padding(k, s, d, w, pool, ceil)
        assert "Pooling has no padding='same'" in same.reason and "padding='same' pads" not in same.reason
        allowed = [0] if pool == "l2" else range(k // 2 + 1)
        sizes = {p: torch_facts(_layer(pool, k, s, p, d, ceil), w) for p in allowed}
        if same.padding is None:
            assert all(f is None or f[0] != w for f in sizes.values()), (pool, w, k, s, d, ceil)
        else:
            assert sizes[same.padding][0] == w, (pool, w, k, s, d, ceil, same)
            assert all(f is None or f[0] != w for p, f in sizes.items() if p < same.padding)


def test_tf_same_rule_is_what_pad_then_conv_does():
    """TF / ONNX SAME in the toy: F.pad(before, after) + Conv2d(padding=0) gives ⌈W/S⌉ and reads what the
    geometry says; the sentence's numbers are the padding used; PyTorch's padding='same' refuses stride 2."""
    from timm.layers import Conv2dSame

    for w, k, s, d in itertools.product(WS, KS, SS, DS):
        spec = tf_same_spec(w, k, s, d)
        geom = analyse_axis(spec)
        conv = nn.Conv2d(1, 1, (k, 1), (s, 1), 0, (d, 1), bias=False)
        nn.init.ones_(conv.weight)
        facts = torch_facts(conv, w, pre=(spec.pad_lo, spec.padding_end))
        case = (w, k, s, d, spec.pad_lo, spec.padding_end)
        assert facts is not None and facts[0] == geom.output == -(-w // s), case
        assert geom.uncovered == tuple(i for i in range(w) if i not in facts[1]), case
        timm_same = Conv2dSame(1, 1, (k, 1), (s, 1), dilation=(d, 1), bias=False)
        with torch.no_grad():
            assert timm_same(_one_hot(w)).shape[2] == geom.output, case
        level, note = note_html(geom)
        title, detail = output_caption(geom)
        assert level != "error" and f"{geom.output}×{geom.output}" in title, case
        _check_read_claims(case, geom, note, tuple(i for i in range(w) if i not in facts[1]))
        formula = formula_html(geom).replace("\u2060", "")
        pads = f"2·{spec.pad_lo}" if spec.pad_lo == spec.padding_end else f"{spec.pad_lo} + {spec.padding_end}"
        assert f"({w} {MINUS} {spec.span} + {pads})/{s} + 1" in formula, case
        assert f"({w} + {pads} {MINUS} {d}·({k} {MINUS} 1) {MINUS} 1)/{s}⌋ + 1 = <b>{facts[0]}</b>" in formula, case
        if s == 1:  # PyTorch's padding='same' pads the same split at stride 1
            same = nn.Conv2d(1, 1, (k, 1), 1, "same", (d, 1), bias=False)
            nn.init.ones_(same.weight)
            assert torch_facts(same, w) == facts, case
        text = tf_same_html(spec)
        assert f"before = ⌊{spec.pad_lo + spec.padding_end}/2⌋ = <b>{spec.pad_lo}</b>" in text, case
        assert f"after = the rest = <b>{spec.padding_end}</b>" in text, case
        assert ("uneven" in text) == (spec.pad_lo != spec.padding_end), case
        assert (f"nn.ZeroPad2d(({spec.pad_lo}, {spec.padding_end}" in text) == (s > 1), case
        code = re.search(r"nn\.ZeroPad2d\(\((\d+), (\d+), (\d+), (\d+)\)\) \+ Conv2d\(padding=0\)", text)
        if code:  # the code the sentence gives, run: same size, same cells read
            pad = nn.ZeroPad2d(tuple(int(v) for v in code.groups()))
            with torch.no_grad():
                out = conv(pad(_one_hot(w)))
            assert out.shape[2] == facts[0], case
            assert tuple(i for i in range(w) if bool((out[i] > 0).any())) == facts[1], case
    with pytest.raises(ValueError):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
