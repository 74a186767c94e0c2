"""One unit's receptive field on the model input: the theoretical box and the real pixels in it.

The box comes from the layer table (``rf``, ``jump``, ``start``: traced through the real
forward pass by :mod:`convviz.core.capture.receptive_field`, real padding included). Near the border
part of the box lies in padding: the unit then sees only the box clipped to the input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class UnitField:
    """Per axis (H, W): ``box`` = first/last input pixel of the theoretical field (unclipped,
    may be < 0 or ≥ the input size), ``seen`` = first/last real pixel (None: none)."""

    size: tuple[float, float]  #: theoretical field size (H, W), pixels
    box: tuple[tuple[float, float], tuple[float, float]]
    seen: tuple[tuple[int, int] | None, tuple[int, int] | None]
    input_hw: tuple[int, int]

    @property
    def seen_hw(self) -> tuple[int, int]:
        """Real input pixels covered, (H, W) (0 where the box misses the input)."""
        return tuple(0 if s is None else s[1] - s[0] + 1 for s in self.seen)

    @property
    def in_padding(self) -> bool:
        """Part of the box lies outside the input (in padding)."""
        return any(lo < 0 or hi > n - 1 for (lo, hi), n in zip(self.box, self.input_hw))

    @property
    def padding_share(self) -> float:
        """Share of the box's area that lies in padding (0…1)."""
        sh, sw = self.seen_hw
        return 1.0 - sh * sw / (self.size[0] * self.size[1])

    @property
    def whole_input(self) -> bool:
        """The real pixels seen are the whole input."""
        return tuple(self.seen_hw) == tuple(self.input_hw)


def unit_field(row, out_row: int, out_col: int, input_hw: tuple[int, int]) -> UnitField:
    """The field of unit (``out_row``, ``out_col``) of layer-table ``row`` on an ``input_hw`` input."""
    box, seen = [], []
    for size, jump, start, index, n in zip(row.rf, row.jump, row.start, (out_row, out_col), input_hw):
        centre = float(start) + int(index) * float(jump)
        lo, hi = centre - (float(size) - 1) / 2, centre + (float(size) - 1) / 2
        first, last = max(0, math.ceil(lo - 1e-9)), min(int(n) - 1, math.floor(hi + 1e-9))
        box.append((lo, hi))
        seen.append((first, last) if first <= last else None)
    return UnitField(tuple(float(s) for s in row.rf), tuple(box), tuple(seen), tuple(int(n) for n in input_hw))


def _num(value: float) -> str:
    return f"{value:g}"


def field_sentence(field: UnitField) -> str:
    """What the unit sees, from ``field``'s own numbers (box, real pixels, padding)."""
    (h, w), (sh, sw) = field.input_hw, field.seen_hw
    box = f"{_num(field.size[0])}×{_num(field.size[1])}"
    if sh == 0 or sw == 0:
        return f"its whole {box} field (orange box) lies in padding: it sees no pixel of the {h}×{w} input"
    if not field.in_padding:
        if field.whole_input:
            return f"covers the whole {h}×{w} input exactly (its theoretical field is {box})"
        return f"sees {sh}×{sw} pixels of the {h}×{w} model input (orange box)"
    (r0, r1), (c0, c1) = field.seen
    share = 100 * field.padding_share
    share = "under 1%" if share < 1 else "over 99%" if share > 99 else f"{share:.0f}%"
    if field.whole_input:
        real = f"covers the whole {h}×{w} input"
    else:
        real = f"sees {sh}×{sw} real pixels (rows {r0}–{r1}, cols {c0}–{c1} of {h}×{w})"
    return f"{real}; its theoretical field is {box}, {share} of it in padding (hatched)"
