"""Scan an image folder with torchvision ``ImageFolder`` semantics.

``ROOT/<class>/<image>`` (or ``ROOT/train/<class>/…`` + ``ROOT/val/<class>/…``). Classes are the
sorted sub-folder names; hidden entries are ignored. Files that cannot be used are skipped with a
reason (not an image, unreadable, too small). Without ``train/``+``val/`` the images are split per
class (stratified) with a fixed seed. Only image headers are read here (fast); a file that fails
to decode later is reported by feature extraction.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from ..images import ALLOWED_FORMATS, ImageError, refused_format

MIN_SIDE = 16


@dataclass(frozen=True)
class Sample:
    path: str
    label: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class ScanResult:
    """What a folder holds: classes, the train/val samples and the skipped files with reasons."""

    root: str
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)
    split: str = "stratified"  # or "folders" (train/ and val/ given)

    def counts(self, which: str = "train") -> dict[str, int]:
        """Images per class in ``train``, ``val`` or ``all``."""
        samples = self.train + self.val if which == "all" else getattr(self, which)
        out = {c: 0 for c in self.classes}
        for s in samples:
            out[self.classes[s.label]] += 1
        return out

    def paths_of(self, class_name: str, limit: int | None = None) -> list[str]:
        """Paths of one class (train first), e.g. for a thumbnail strip."""
        index = self.classes.index(class_name)
        paths = [s.path for s in self.train + self.val if s.label == index]
        return paths[:limit] if limit is not None else paths


def check_image(path: str, min_side: int = MIN_SIDE) -> str | None:
    """None when the file looks like a usable image (header only), else the reason. Pillow tries
    only the allow-listed formats (:data:`convviz.core.images.ALLOWED_FORMATS`)."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with Image.open(path, formats=ALLOWED_FORMATS) as img:
            if min(img.size) < min_side:
                return f"too small ({img.width}×{img.height}, need at least {min_side} px a side)"
            if img.width * img.height > Image.MAX_IMAGE_PIXELS:
                return "too many pixels"
    except UnidentifiedImageError:
        return refused_format(path) or "not an image"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return None


def _entries(folder: str) -> list[str]:
    return sorted(e for e in os.listdir(folder) if not e.startswith("."))


def _class_dirs(folder: str) -> list[str]:
    return [e for e in _entries(folder) if os.path.isdir(os.path.join(folder, e))]


def _scan_classes(folder: str, classes: list[str], min_side: int, skipped: list[Skipped]) -> list[Sample]:
    samples = []
    for label, name in enumerate(classes):
        class_dir = os.path.join(folder, name)
        if not os.path.isdir(class_dir):
            continue
        for path, reason in walk_images(class_dir, min_side):
            if reason:
                skipped.append(Skipped(path, reason))
            else:
                samples.append(Sample(path, label))
    return samples


def walk_images(folder: str, min_side: int = MIN_SIDE):
    """Every file under ``folder`` (sorted, hidden entries and symlinked folders skipped) with the reason it
    cannot be used as an image ("" when it can)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith("."):
                path = os.path.join(root, f)
                yield path, check_image(path, min_side) or ""


def stratified_split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Per class: shuffle with ``seed``, put ``round(n*val_fraction)`` (≥1 when n ≥ 2) into val."""
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted({s.label for s in samples}):
        group = [s for s in samples if s.label == label]
        rng.shuffle(group)
        n_val = min(len(group) - 1, max(1, round(len(group) * val_fraction))) if len(group) >= 2 else 0
        val += group[:n_val]
        train += group[n_val:]
    return train, val


def scan_folder(root: str, *, val_fraction: float = 0.2, seed: int = 0, min_side: int = MIN_SIDE) -> ScanResult:
    """Scan ``root``; raise :class:`ImageError` (one line) when it cannot be trained on."""
    root = os.path.abspath(os.fspath(root))
    name = os.path.basename(root) or root
    if not os.path.isdir(root):
        raise ImageError(f"{name}: no such folder")
    top = _class_dirs(root)
    skipped: list[Skipped] = []
    if "train" in top and "val" in top:
        classes = sorted(set(_class_dirs(os.path.join(root, "train"))) | set(_class_dirs(os.path.join(root, "val"))))
        train = _scan_classes(os.path.join(root, "train"), classes, min_side, skipped)
        val = _scan_classes(os.path.join(root, "val"), classes, min_side, skipped)
        split = "folders"
    else:
        classes = top
        train, val = stratified_split(_scan_classes(root, classes, min_side, skipped), val_fraction, seed)
        split = "stratified"
    result = ScanResult(root, classes, train, val, skipped, split)
    _check_usable(result, name)
    return result


def _check_usable(result: ScanResult, name: str) -> None:
    if not result.classes:
        loose = [s for s in result.skipped] or _entries(result.root)
        why = "it holds no sub-folders" if not loose else "images must be in one sub-folder per class"
        raise ImageError(f"{name}: no class folders ({why}; expected {name}/<class>/<image>)")
    if len(result.classes) < 2:
        raise ImageError(f"{name}: only one class ({result.classes[0]}); fine-tuning needs at least two class folders")
    counts = result.counts("all")
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        reasons = {s.reason for s in result.skipped if os.sep + empty[0] + os.sep in s.path}
        detail = f" ({sorted(reasons)[0]})" if reasons else ""
        raise ImageError(f"{name}: class {empty[0]!r} has no readable images{detail}")
    if not result.train or not result.val:
        raise ImageError(f"{name}: too few images to hold out a validation set (need at least 2 per class)")
    missing = [c for c, n in result.counts("train").items() if n == 0]
    if missing:
        raise ImageError(f"{name}: class {missing[0]!r} has no training images")
