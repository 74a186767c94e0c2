"""Colour lookup tables in plain numpy (perceptually uniform, colour-blind safe)."""
from __future__ import annotations

import numpy as np

# Anchor colours of matplotlib's viridis and cividis (sampled at 9 evenly spaced points).
_ANCHORS = {
    "viridis": [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)],
    "cividis": [(0, 34, 78), (18, 53, 112), (59, 73, 108), (87, 93, 109), (112, 113, 115),
                (138, 134, 120), (167, 157, 116), (199, 182, 102), (234, 209, 72)],
    "gray": [(0, 0, 0), (255, 255, 255)],
}
COLORMAPS = tuple(_ANCHORS)


def lookup_table(name: str = "viridis", n: int = 256) -> np.ndarray:
    """(n, 3) uint8 table interpolated between the anchors of ``name``."""
    try:
        anchors = np.asarray(_ANCHORS[name], dtype=np.float64)
    except KeyError:
        raise ValueError(f"unknown colormap {name!r}; choose from {', '.join(COLORMAPS)}") from None
    positions = np.linspace(0, 1, len(anchors))
    samples = np.linspace(0, 1, n)
    table = np.stack([np.interp(samples, positions, anchors[:, c]) for c in range(3)], axis=1)
    return table.round().astype(np.uint8)
