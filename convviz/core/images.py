"""Open any image file safely → an RGB ``uint8`` array for display.

Only the formats in :data:`ALLOWED_FORMATS` are handed to Pillow (never PostScript/EPS,
which Pillow passes to Ghostscript, nor PDF); their decoders are linear in pixels. An
image is refused before decoding when it has more than :data:`MAX_PIXELS` pixels or its
decoded first frame would take more than :data:`MAX_DECODED_BYTES`. The conversion to 8-bit
RGB (EXIF orientation, alpha over white, 16/32-bit and float depth scaled) works tile by
tile in float32, so the peak is Pillow's decoded frame + the (H, W, 3) result + one tile.
Every failure is an :class:`ImageError` with one line for the user.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import first_line

#: Formats Pillow may decode (its names; PPM covers PBM/PGM/PPM/PFM, DIB is headerless BMP).
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM", "TGA")
_ALLOWED_TEXT = ", ".join(ALLOWED_FORMATS)
#: Images larger than this many pixels are refused (Pillow's own bomb guard is 2× this).
MAX_PIXELS = 89_478_485
#: Refused when Pillow's decoded first frame would exceed this many bytes.
MAX_DECODED_BYTES = 384 * 2**20
#: Pixels converted at a time: bounds the float32 working memory of the 8-bit conversion.
TILE_PIXELS = 1 << 20
ImageFile.LOAD_TRUNCATED_IMAGES = False

_NEVER = ((b"%!PS", "PostScript/EPS"), (b"\xc5\xd0\xd3\xc6", "PostScript/EPS"), (b"%PDF", "PDF"))
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_ORIENT = {  # EXIF orientation → the numpy view Pillow's ImageOps.exif_transpose produces
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
}


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


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, read without decoding pixels."""

    format: str
    size: tuple[int, int]
    mode: str


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """Check ``path`` cheaply (exists, allowed format, within the limits) without decoding it."""
    with _open(path) as (img, _):
        return ImageInfo(img.format, img.size, img.mode)


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Decode ``path`` into RGB; raise :class:`ImageError` with a one-line reason."""
    with _open(path) as (img, name):
        try:
            img.load()
            mode, orientation = img.mode, _orientation(img)
            rgb = _decode_rgb(img)
        except MemoryError:
            raise ImageError(f"{name}: not enough memory to decode this image") from None
        except Exception as exc:  # hostile files make plugins fail in any way (struct.error, IndexError …)
            raise ImageError(f"{name}: damaged or truncated image ({first_line(exc)})") from None
    return LoadedImage(rgb=_orient(rgb, orientation), source=os.fspath(path), original_mode=mode)


@contextmanager
def _open(path):
    """Open ``path`` with the allow-list and check its limits; yields (image, display name)."""
    path = os.fspath(path)
    name = os.path.basename(path) or path
    if not os.path.isfile(path):
        raise ImageError(f"{name}: no such file")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: too many pixels (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(_unidentified(path, name)) from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to read this image's header") from None
    except Exception as exc:
        raise ImageError(f"{name}: damaged image header ({first_line(exc)})") from None
    try:
        _check_limits(img, name)
        yield img, name
    finally:
        img.close()


def _unidentified(path: str, name: str) -> str:
    """Why ``path`` was not opened, naming a known but refused format (header bytes only)."""
    return f"{name}: {refused_format(path) or f'not an image file convviz can read (allowed: {_ALLOWED_TEXT})'}"


def refused_format(path: str) -> str | None:
    """For a file the allow-list did not open: that it is a known but refused format (from its
    header bytes alone), e.g. "PostScript/EPS files are never opened …"; None when it is no known format."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    for magic, kind in _NEVER:
        if head.lstrip(b"\x00\t\r\n ").startswith(magic):
            return f"{kind} files are never opened (they are programs, not pictures)"
    for fmt, (_, accept) in Image.OPEN.items():
        if fmt not in ALLOWED_FORMATS and accept is not None:
            try:
                if accept(head):
                    return f"{fmt} images are not opened (allowed: {_ALLOWED_TEXT})"
            except Exception:  # an accept() check that trips on odd bytes names nothing
                continue
    return None


def _pixel_bytes(mode: str) -> int:
    """Bytes per pixel in Pillow's own buffer (multi-band 8-bit images take 4)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _check_limits(img: Image.Image, name: str) -> None:
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(f"{name}: {width}×{height} pixels is not an image")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name}: {width}×{height} pixels is too large "
                         f"(limit {MAX_PIXELS // 1_000_000} megapixels; possible decompression bomb)")
    decoded = width * height * _pixel_bytes(img.mode)
    if decoded > MAX_DECODED_BYTES:
        raise ImageError(f"{name}: {width}×{height} {img.mode} would take {decoded // 2**20} MB decoded "
                         f"(limit {MAX_DECODED_BYTES // 2**20} MB)")


def image_from_array(array: np.ndarray, source: str = "pasted image") -> LoadedImage:
    """Wrap an in-memory (H, W), (H, W, 3) or (H, W, 4) array (e.g. the clipboard)."""
    arr = np.asarray(array)
    if arr.ndim not in (2, 3) or arr.size == 0 or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{source}: not an image array (shape {arr.shape})")
    if arr.dtype != np.uint8:
        scale = _DepthScale.of(arr.dtype.kind == "f", _row_chunks(arr))
        arr = np.concatenate([scale.apply(chunk) for chunk in _row_chunks(arr)], axis=0)
    mode = {2: "L", 1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
    img = Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[2] == 1 else arr, mode)
    return LoadedImage(rgb=pil_to_rgb(img), source=source, original_mode=mode)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image → (H, W, 3) uint8: EXIF-rotated, alpha over white, depth scaled."""
    return _orient(_decode_rgb(img), _orientation(img))


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block is ignored, as Pillow's exif_transpose does
        return 1
    return value if value in _ORIENT else 1


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(_ORIENT[orientation](rgb)) if orientation in _ORIENT else rgb


def _tiles(width: int, height: int):
    """Boxes (left, top, right, bottom) of at most :data:`TILE_PIXELS` pixels covering the image."""
    cols = min(width, TILE_PIXELS)
    rows = max(1, TILE_PIXELS // cols)
    for top in range(0, height, rows):
        for left in range(0, width, cols):
            yield left, top, min(left + cols, width), min(top + rows, height)


def _decode_rgb(img: Image.Image) -> np.ndarray:
    """Unoriented (H, W, 3) uint8 from a loaded image, converted one tile at a time."""
    width, height = img.size
    out = np.empty((height, width, 3), np.uint8)
    scale = None
    if img.mode in _DEEP_MODES:
        tiles = (np.asarray(img.crop(box), dtype=np.float32) for box in _tiles(width, height))
        scale = _DepthScale.of(img.mode == "F", tiles)
    for left, top, right, bottom in _tiles(width, height):
        tile = img.crop((left, top, right, bottom))
        if scale is not None:
            out[top:bottom, left:right] = scale.apply(np.asarray(tile, dtype=np.float32))[..., None]
        else:
            out[top:bottom, left:right] = _tile_rgb(tile)
    return out


def _tile_rgb(tile: Image.Image) -> np.ndarray:
    if tile.mode == "1":
        tile = tile.convert("L")
    if tile.mode == "P":
        tile = tile.convert("RGBA" if "transparency" in tile.info else "RGB")
    if tile.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = tile.convert("RGBA")
        tile = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if tile.mode != "RGB":
        tile = tile.convert("RGB")
    return np.asarray(tile, dtype=np.uint8)


def _row_chunks(arr: np.ndarray):
    rows = max(1, TILE_PIXELS // max(1, arr[0].size))
    return (arr[i:i + rows] for i in range(0, arr.shape[0], rows))


@dataclass(frozen=True)
class _DepthScale:
    """Maps deep values to 0..255: floats in [0, 1] by 255, 8/16-bit integers as such, else min/max."""

    offset: float
    factor: float

    @classmethod
    def of(cls, is_float: bool, chunks) -> "_DepthScale":
        lo, hi = np.inf, -np.inf
        for chunk in chunks:
            finite = chunk if np.isfinite(chunk).all() else chunk[np.isfinite(chunk)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        if lo > hi:  # nothing finite
            return cls(0.0, 0.0)
        if is_float and lo >= 0 and hi <= 1:
            return cls(0.0, 255.0)
        if not is_float and lo >= 0 and hi <= 255:
            return cls(0.0, 1.0)
        if not is_float and lo >= 0 and hi <= 65535:
            return cls(0.0, 1 / 257)
        return cls(lo, 255.0 / (hi - lo)) if hi > lo else cls(0.0, 0.0)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """A chunk of values → uint8 (works on one float32 copy of the chunk)."""
        values = np.array(values, dtype=np.float32, copy=True)
        if self.offset:
            np.subtract(values, np.float32(self.offset), out=values)
        np.multiply(values, np.float32(self.factor), out=values)
        np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        np.clip(values, 0, 255, out=values)
        return np.rint(values, out=values).astype(np.uint8)
