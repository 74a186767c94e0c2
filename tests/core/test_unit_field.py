"""The receptive-field caption's numbers against the input pixels a unit really depends on.

Every conv layer of resnet18 and of the bundled model; per layer six units (the four
corners, one next to a corner, the centre) on a non-square input. Support is measured by
input gradient on a linearised copy (positive weights, no ReLU): the gradient is > 0
exactly on the pixels a unit sees. The six units ride in one batch, one backward per layer.
"""
import pytest
import torch
import torchvision
from torch import nn

from convviz.core.capture.layer_table import layer_table
from convviz.core.capture.unit_field import UnitField, field_sentence, unit_field

from test_receptive_field import _linearised

HW = (112, 144)


def _units(h: int, w: int) -> list[tuple[int, int]]:
    return [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (min(1, h - 1), min(1, w - 1)), (h // 2, w // 2)]


def _check_every_conv(model: nn.Module) -> dict[str, int]:
    torch.manual_seed(0)
    model = _linearised(model)
    rows = {r.name: r for r in layer_table(model, (3, *HW))}
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    outputs = {}
    hooks = [m.register_forward_hook(lambda m, a, out, n=n: outputs.__setitem__(n, out)) for n, m in convs.items()]
    x = (torch.rand(6, 3, *HW) + 0.5).requires_grad_(True)
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    counts = {"units": 0, "padding": 0, "inside": 0, "whole": 0}
    for name in convs:
        out, row = outputs[name], rows[name]
        units = _units(*out.shape[-2:])
        picked = sum(out[b, :, i, j].sum() for b, (i, j) in enumerate(units))
        (grad,) = torch.autograd.grad(picked, x, retain_graph=True)
        for b, (i, j) in enumerate(units):
            seen_rows = torch.nonzero(grad[b].sum(dim=(0, 2)) > 0).flatten()
            seen_cols = torch.nonzero(grad[b].sum(dim=(0, 1)) > 0).flatten()
            measured = ((int(seen_rows.min()), int(seen_rows.max())), (int(seen_cols.min()), int(seen_cols.max())))
            field = unit_field(row, i, j, HW)
            assert field.seen == measured, (name, (i, j), field, measured)
            _check_sentence(field)
            counts["units"] += 1
            counts["padding" if field.in_padding else "inside"] += 1
            counts["whole"] += field.whole_input
    return counts


def _check_sentence(field: UnitField) -> None:
    """The caption says the computed facts: real pixels, the box when it differs, padding iff any."""
    text = field_sentence(field)
    sh, sw = field.seen_hw
    assert ("padding" in text) == field.in_padding, text
    assert ("whole" in text) == field.whole_input, text
    if not field.whole_input:
        assert f"sees {sh}×{sw}" in text, text
    if field.in_padding:
        assert f"theoretical field is {field.size[0]:g}×{field.size[1]:g}, " in text, text
        (r0, r1), (c0, c1) = field.seen
        if not field.whole_input:
            assert f"rows {r0}–{r1}, cols {c0}–{c1}" in text, text


def test_resnet18_every_conv_layer():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        counts = _check_every_conv(torchvision.models.resnet18())
    finally:
        torch.set_num_threads(before)
    assert counts["padding"] > 0 and counts["inside"] > 0 and counts["whole"] > 0, counts


def test_bundled_model_every_conv_layer():
    from convviz.core.model.loading import load_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        counts = _check_every_conv(load_model("default").module)
    finally:
        torch.set_num_threads(before)
    assert counts["units"] >= 6 * 30 and counts["padding"] > 0 and counts["inside"] > 0 and counts["whole"] > 0, counts


class _Row:
    def __init__(self, rf, jump, start):
        self.rf, self.jump, self.start = rf, jump, start


@pytest.mark.parametrize("unit, expected", [
    ((0, 0), "sees 4×4 real pixels (rows 0–3, cols 0–3 of 20×20); its theoretical field is 7×7, 67% of it in padding"),
    ((5, 5), "sees 7×7 pixels of the 20×20 model input (orange box)"),
])
def test_sentences_by_hand(unit, expected):
    row = _Row((7, 7), (2, 2), (0.0, 0.0))  # a 7×7, stride-2, padding-3 conv
    field = unit_field(row, *unit, (20, 20))
    assert field_sentence(field).startswith(expected)
    whole = unit_field(_Row((40, 40), (8, 8), (9.5, 9.5)), 0, 0, (20, 20))
    assert whole.whole_input and field_sentence(whole) == (
        "covers the whole 20×20 input; its theoretical field is 40×40, 75% of it in padding (hatched)")
    exact = unit_field(_Row((20, 20), (1, 1), (9.5, 9.5)), 0, 0, (20, 20))
    assert field_sentence(exact).startswith("covers the whole 20×20 input exactly")
