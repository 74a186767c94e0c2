"""Small pictures for the fine-tune panel, made off the GUI thread: thumbnails and tiled grids (Pillow)."""
from __future__ import annotations

import numpy as np

THUMB_SIDE = 96


def tile(images: list[np.ndarray], cols: int, side: int, gap: int = 4, background: int = 255) -> np.ndarray:
    """Square uint8 images (any size) resized to ``side`` and laid out in a grid, ``cols`` wide."""
    from PIL import Image

    rows = max(1, -(-len(images) // cols))
    out = np.full((rows * side + (rows - 1) * gap, cols * side + (cols - 1) * gap, 3), background, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        small = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((side, side), Image.BILINEAR))
        out[r * (side + gap):r * (side + gap) + side, c * (side + gap):c * (side + gap) + side] = small
    return out


def thumbnail(path: str, side: int = THUMB_SIDE) -> np.ndarray | None:
    """A small (≤ side) uint8 RGB thumbnail (JPEG draft decode, the app's format allow-list); None when it fails."""
    from PIL import Image

    from convviz.core.images import ALLOWED_FORMATS, pil_to_rgb

    try:
        with Image.open(path, formats=ALLOWED_FORMATS) as img:
            img.draft("RGB", (side * 2, side * 2))
            img.thumbnail((side, side))
            return pil_to_rgb(img)
    except Exception:  # a file that passed the header check may still fail to decode
        return None
