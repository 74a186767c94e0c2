"""Every sentence of the toy grid's caption and note against torch's own layers, over a grid
of (W, K, S, P, D, ceil_mode) for Conv2d, MaxPool2d, AvgPool2d and LPPool2d (no Qt needed)."""
import itertools
import math
import re

import pytest
import torch
from torch import nn

from convviz.core.geometry.arithmetic import analyse_axis, toy_spec
from convviz.ui.convolution.text import formula_html, note_html, output_caption

GRID = list(itertools.product(range(1, 10), range(1, 5), range(1, 4), range(0, 3), range(1, 3), (False, True)))




def _module(mode, k, s, p, d, ceil):
    if mode == "conv":
        return None if ceil else nn.Conv2d(1, 1, k, s, p, d, bias=False)
    if mode == "max":
        return nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    if d > 1 or (mode == "l2" and p):
        return None  # the module has no such argument: the toy refuses too
    return nn.AvgPool2d(k, s, p, ceil_mode=ceil) if mode == "avg" else nn.LPPool2d(2, k, s, ceil_mode=ceil)


def _size(layer, w):
    if layer is None:
        return None
    try:
        with torch.no_grad():
            return layer(torch.ones(1, 1, w, w)).shape[-1]
    except RuntimeError:
        return None


@pytest.mark.parametrize("mode", ["conv", "max", "avg", "l2"])
def test_captions_and_notes_say_what_torch_does(mode):
    seen = set()
    for w, k, s, p, d, ceil in GRID:
        if mode == "conv" and ceil:
            continue
        case = (mode, w, k, s, p, d, ceil)
        geom = analyse_axis(toy_spec(mode, w, k, s, p, d, ceil))
        want = _size(_module(mode, k, s, p, d, ceil), w)
        level, note = note_html(geom)
        title, detail = output_caption(geom)
        assert "\n" not in note and "0×0" not in note, case
        if want is None:
            assert level == "error" and "refuses" in note and detail == "PyTorch refuses", case
            if "half the kernel" in geom.error:
                assert "W or P larger" not in note and f"P at most K/2 = {k // 2}" in note, case
                seen.add("pad advice")
            continue
        assert level != "error" and f"{want}×{want}" in title, case
        assert "parameters" in formula_html(geom), case
        rounded = re.search(r"⌈(\d+)/(\d+)⌉ = (\d+)", detail)
        if rounded:  # the ceiling is right, and a dropped window is said to be dropped
            a, b, n = (int(v) for v in rounded.groups())
            assert n == math.ceil(a / b), case
            assert (n != want) == ("dropped" in detail), case
            seen.add("dropped" if n != want else "ceil")
        floor_size = _size(_module(mode, k, s, p, d, False), w)
        partial = mode != "conv" and ceil and (floor_size is None or want > floor_size)
        assert ("partial window" in note) == partial, case
        if partial and floor_size is None:
            assert "Without ceil_mode (and in every Conv2d) torch refuses" in note, case
            seen.add("ceil only")
        if "tile the padded input" in note:
            assert s == d * (k - 1) + 1, case
        if "overlap" in note:
            assert "&lt;" in note, case  # a bare "<" would start an HTML tag and cut the note off
            assert s < d * (k - 1) + 1, case
            seen.add("overlap")
    if mode == "max":
        assert {"pad advice", "dropped", "ceil", "ceil only", "overlap"} <= seen
