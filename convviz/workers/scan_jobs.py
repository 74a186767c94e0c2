"""The fine-tune panel's quick jobs: scan a folder (with thumbnails) and preview augmentations.

Each returns plain data (numpy arrays, dataclasses); the pictures are tiled here, off the GUI thread.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from convviz.core.errors import first_line

from .jobs import CancelToken, JobFailed, Progress

THUMB_SIDE = 96
THUMBS_PER_CLASS = 8
PREVIEW_COUNT = 8
#: the preview grid: columns and side of each augmented image (tiled here, off the GUI thread)
PREVIEW_COLS, PREVIEW_SIDE = 4, 84


@dataclass(frozen=True)
class ScanReport:
    """A scanned folder (core :class:`ScanResult`) with a thumbnail strip per class."""

    scan: object  #: convviz.core.finetune.ScanResult (lists of paths and labels only)
    thumbs: dict  #: class name → list of (path, (h, w, 3) uint8)


@dataclass(frozen=True)
class AugmentPreview:
    """Augmented versions of one image (as training will see them) and the one-pixel-shift numbers."""

    images: list  #: (S, S, 3) uint8 arrays
    grid: np.ndarray  #: the images tiled PREVIEW_COLS wide at PREVIEW_SIDE pixels, ready to show
    shift: object  #: convviz.core.finetune.ShiftDemo of the model-input image
    input_size: int
    seed: int = 0  #: the run's seed the images were drawn with
    first_epoch: bool = False  #: True: training images 1…n as epoch 1 draws them; False: n draws of one photo


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
    """A small (≤ side) uint8 RGB thumbnail (JPEG draft decode); None when the file fails."""
    from PIL import Image

    from convviz.core.images import pil_to_rgb

    try:
        from convviz.core.images import ALLOWED_FORMATS

        with Image.open(path, formats=ALLOWED_FORMATS) as img:  # the app's allow-list, as everywhere
            img.draft("RGB", (side * 2, side * 2))
            img.thumbnail((side, side))
            return pil_to_rgb(img)
    except Exception:  # a file that passed the header check may still fail to decode
        return None


# ------------------------------------------------------------------------------ jobs
def scan_job(root: str, seed: int = 0, cancel: CancelToken | None = None):
    """Scan ``root`` (core rules), then decode a thumbnail strip per class; JobFailed on bad input."""
    from convviz.core.finetune import scan_folder

    yield Progress(None, f"Scanning {os.path.basename(os.path.normpath(root))}…")
    try:
        scan = scan_folder(root, seed=seed)
    except (ValueError, OSError) as exc:
        raise JobFailed(first_line(exc)) from None
    thumbs: dict = {}
    total = len(scan.classes) * THUMBS_PER_CLASS
    for c, name in enumerate(scan.classes):
        strip = []
        for path in scan.paths_of(name, THUMBS_PER_CLASS):
            if cancel is not None and cancel.cancelled:
                return None
            image = thumbnail(path)
            if image is not None:
                strip.append((path, image))
        thumbs[name] = strip
        yield Progress((c + 1) * THUMBS_PER_CLASS / total, "Reading thumbnails…")
    return ScanReport(scan, thumbs)


_RNG_LOCK = threading.RLock()


def share_rng_lock() -> None:
    """Seeded augmentation in preview and training threads takes turns on torch's global generator."""
    from convviz.core.finetune import augment

    augment.rng_guard = _RNG_LOCK


def preview_job(source, spec, preprocess, count: int = PREVIEW_COUNT, seed: int = 0) -> AugmentPreview:
    """``count`` augmented versions of ``source`` + the one-pixel-shift numbers of its model input.

    ``source``: training samples (the grid: epoch 1 of the first ``count``, drawn by the training
    dataset itself with ``seed``), an image path or an (H, W, 3) uint8 array (``count`` draws of it).
    """
    share_rng_lock()
    from convviz.core.finetune import preview_grid, shift_by_one_pixel_demo
    from convviz.core.finetune.augment import first_epoch_preview
    from convviz.core.finetune.features import decode_rgb, model_input_uint8

    samples = list(source) if isinstance(source, (list, tuple)) else None
    if samples:
        source = samples[0].path  # the shift demo: training image 1
    if isinstance(source, str):
        try:
            rgb = decode_rgb(source, 2 * round(preprocess.input_size / preprocess.crop_pct))
        except (ValueError, OSError) as exc:
            raise JobFailed(first_line(exc)) from None
    else:
        rgb = source
    if samples:
        images, _errors = first_epoch_preview(samples, spec, preprocess, seed, count)
    else:
        images = preview_grid(rgb, spec, preprocess, count, seed=seed)
    model_input = model_input_uint8(rgb, preprocess).permute(1, 2, 0).numpy()
    return AugmentPreview(images, tile(images, PREVIEW_COLS, PREVIEW_SIDE), shift_by_one_pixel_demo(model_input),
                          preprocess.input_size, int(seed), bool(samples))
