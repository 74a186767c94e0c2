"""Open any image file safely → an RGB ``uint8`` array for display.

Pillow decodes; EXIF orientation is applied; every mode (grayscale, RGBA, palette,
CMYK, 16-bit, float) becomes 8-bit RGB; non-images, empty or truncated files and
decompression bombs are refused with one clear line (:class:`ImageError`).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import first_line

#: Images larger than this many pixels are refused (Pillow's own bomb guard is 2× this).
MAX_PIXELS = 89_478_485
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An image that cannot be opened; the message is one line for the user."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded picture: ``rgb`` is (H, W, 3) uint8, kept at full resolution."""

    rgb: np.ndarray
    source: str
    original_mode: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def name(self) -> str:
        return os.path.basename(self.source) or self.source


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Decode ``path`` into RGB; raise :class:`ImageError` with a one-line reason."""
    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ImageError(f"{name}: no such file")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(
                        f"{name}: {img.width}×{img.height} pixels is too large "
                        f"(limit {MAX_PIXELS // 1_000_000} megapixels; possible decompression bomb)"
                    )
                img.seek(0)
                img.load()
                mode = img.mode
                rgb = pil_to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: too many pixels (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: damaged or truncated image ({first_line(exc)})") from None
    return LoadedImage(rgb=rgb, source=path, original_mode=mode)


def image_from_array(array: np.ndarray, source: str = "pasted image") -> LoadedImage:
    """Wrap an in-memory (H, W), (H, W, 3) or (H, W, 4) array (e.g. the clipboard)."""
    arr = np.asarray(array)
    if arr.ndim not in (2, 3) or arr.size == 0 or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{source}: not an image array (shape {arr.shape})")
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr)
    mode = {2: "L", 1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
    img = Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[2] == 1 else arr, mode)
    return LoadedImage(rgb=pil_to_rgb(img), source=source, original_mode=mode)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image → (H, W, 3) uint8: EXIF-rotated, alpha over white, depth scaled."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return np.repeat(_to_uint8(np.asarray(img))[..., None], 3, axis=2)
    if img.mode == "1":
        img = img.convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale to 0..255: floats in [0, 1] by 255, 16-bit integers by 257, other ranges by min/max."""
    is_float = values.dtype.kind == "f"
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if is_float and lo >= 0 and hi <= 1:
        scaled = values * 255.0
    elif not is_float and lo >= 0 and hi <= 255:
        scaled = values
    elif not is_float and lo >= 0 and hi <= 65535:
        scaled = values / 257.0
    else:
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
