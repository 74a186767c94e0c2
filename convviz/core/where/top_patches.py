"""Top patches per channel: the image regions of a folder that most activate each channel of a layer.

One pass over the folder serves every channel of the layer: each image's maximum per channel (and
where it lies) is merged into a running top-k per channel, so memory is (channels × k) however
many images there are. A patch is the argmax unit's receptive field (the real input pixels of its
theoretical box, :func:`convviz.core.capture.unit_field.unit_field`) mapped back onto the original photo.
One patch per image per channel (its strongest unit), as in Zeiler & Fergus (2014).

The pass is cached on disk per model (layers + weights), preprocessing, layer, k and folder
listing (paths, sizes, modification times) as ``<cache dir>/top_patches/<key>.npz``, read with
``allow_pickle=False``; ``CONVVIZ_FEATURE_CACHE=0`` turns it off, as for the feature cache.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write
from ..finetune.backend import weights_hash
from ..finetune.feature_cache import cache_root, enabled
from ..finetune.features import ImageDataset, make_loader, normalize
from ..finetune.scan import Sample, walk_images
from ..images import ImageError, load_image
from ..tasks import Need, Scope, TaskInputs, TaskState, task
from ..capture.unit_field import unit_field
from .frame import crop_frame
from .layer_tap import check_channel, layer_row, run_to, spatial_row

TOP_K = 9
BATCH_SIZE = 16
PATCH_MAX_SIDE = 256  #: patches larger than this (original pixels) are scaled down
_MEMO: dict[str, "TopPatches"] = {}  #: the last few passes of this process (channel changes reuse them)
_MEMO_SIZE = 4


@dataclass(frozen=True)
class TopPatches:
    """A layer's running top-``k`` over a folder. Per channel (row) and rank (column): the
    activation ``values`` (descending; -inf where the folder had fewer images), the index into
    ``paths`` (-1: none) and the unit (row, col) at the layer."""

    layer: str
    paths: tuple[str, ...]
    values: np.ndarray  #: (C, k) float32
    images: np.ndarray  #: (C, k) int32
    units: np.ndarray  #: (C, k, 2) int32
    map_hw: tuple[int, int]  #: the layer's output (H, W); (1, 1) for a vector
    input_size: int
    skipped: tuple[tuple[str, str], ...] = ()  #: (path, reason) of files that were not used
    cached: bool = False  #: read from the disk cache or this process's memo
    seconds: float = 0.0  #: time of the pass itself (0 when cached)

    @property
    def channels(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class Patch:
    """One of a channel's top patches: the unit's real input pixels cut out of the original photo."""

    rank: int
    value: float
    path: str
    unit: tuple[int, int]  #: (row, col) at the layer
    input_box: tuple[int, int, int, int]  #: (top, bottom, left, right) input pixels seen, inclusive
    photo_box: tuple[int, int, int, int]  #: (left, top, right, bottom) on the original photo, exclusive end
    rgb: np.ndarray  #: (h, w, 3) uint8, at most PATCH_MAX_SIDE a side


@dataclass(frozen=True)
class TopPatchesResult:
    """What the task returns: the whole layer's top-k and one channel's patches."""

    top: TopPatches
    channel: int
    patches: tuple[Patch, ...]
    rf: tuple[float, float] | None  #: the layer's theoretical field (H, W), None for a vector


def list_images(folder: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Image files under ``folder`` (recursive, sorted, hidden entries skipped) and (path, reason)
    for the files that are not usable images; one-line :class:`ImageError` when none is."""
    folder = os.path.abspath(os.fspath(folder))
    name = os.path.basename(folder) or folder
    if not os.path.isdir(folder):
        raise ImageError(f"{name}: no such folder")
    paths, skipped = [], []
    for path, reason in walk_images(folder):
        (skipped.append((path, reason)) if reason else paths.append(path))
    if not paths and not skipped:
        raise ImageError(f"{name}: the folder is empty (no image files in it or its sub-folders)")
    if not paths:
        path, reason = skipped[0]
        raise ImageError(f"{name}: none of its {len(skipped)} files is an image convviz can read "
                         f"({os.path.basename(path)}: {reason})")
    return paths, skipped


def merge_top(values, images, units, batch_values, batch_units, first_image: int, k: int = TOP_K):
    """Running top-``k``: merge one batch's per-image maxima (N, C) and their units (N, C, 2) into
    (C, k) ``values`` / ``images`` and (C, k, 2) ``units``. Ties keep the earlier image."""
    n = batch_values.shape[0]
    all_values = np.concatenate([values, batch_values.T], axis=1)
    all_images = np.concatenate([images, np.broadcast_to(np.arange(first_image, first_image + n, dtype=np.int32),
                                                         batch_values.T.shape)], axis=1)
    all_units = np.concatenate([units, batch_units.transpose(1, 0, 2)], axis=1)
    order = np.argsort(-all_values, axis=1, kind="stable")[:, :k]
    take = np.take_along_axis
    return take(all_values, order, 1), take(all_images, order, 1), take(all_units, order[..., None], 1)


def image_maxima(out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image and channel the largest activation and its unit: (N, C) float32, (N, C, 2) int32."""
    out = out.detach().float()
    if out.dim() == 2:
        return out.numpy(), np.zeros((*out.shape, 2), np.int32)
    n, c, h, w = out.shape
    best, where = out.reshape(n, c, h * w).max(dim=2)
    where = where.numpy().astype(np.int32)
    return best.numpy(), np.stack([where // w, where % w], axis=-1)


def cache_key(model, preprocess, layer: str, k: int, paths: list[str]) -> str:
    """What a pass depends on: the network and its weights, the preprocessing, the layer, k, the files."""
    digest = hashlib.sha256(f"{weights_hash(model)}|{preprocess}|{layer}|{k}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _cache_file(key: str) -> str | None:
    return os.path.join(cache_root(), "top_patches", f"{key}.npz") if enabled() else None


def _load_cached(key: str, layer: str) -> TopPatches | None:
    if key in _MEMO:
        return _MEMO[key]
    path = _cache_file(key)
    if path is None or not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            skipped = tuple(zip(data["skipped_paths"].astype(str).tolist(), data["skipped_reasons"].astype(str).tolist()))
            top = TopPatches(layer, tuple(data["paths"].astype(str).tolist()), data["values"].astype(np.float32),
                             data["images"].astype(np.int32), data["units"].astype(np.int32),
                             tuple(int(v) for v in data["map_hw"]), int(data["input_size"]), skipped, cached=True)
    except Exception:  # a damaged or foreign file: compute again, never fail
        return None
    if top.values.shape != top.images.shape or top.units.shape != (*top.values.shape, 2):
        return None
    _remember(key, top)
    return top


def _remember(key: str, top: TopPatches) -> None:
    _MEMO[key] = replace(top, cached=True, seconds=0.0)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))


def _store(key: str, top: TopPatches) -> None:
    path = _cache_file(key)
    _remember(key, top)
    if path is None:
        return
    reasons = [r for _, r in top.skipped]
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, lambda handle: np.savez(
            handle, paths=np.asarray(top.paths, dtype=str), values=top.values, images=top.images, units=top.units,
            map_hw=np.asarray(top.map_hw), input_size=np.asarray(top.input_size),
            skipped_paths=np.asarray([p for p, _ in top.skipped], dtype=str), skipped_reasons=np.asarray(reasons, dtype=str)))
    except Exception:  # a full or read-only disk: the result stands, only uncached
        pass


def scan_top(loaded, folder: str, layer: str, *, k: int = TOP_K, batch_size: int = BATCH_SIZE,
             state: TaskState | None = None, workers: int | None = None) -> TopPatches:
    """The top-``k`` per channel of record ``layer`` over the images under ``folder`` (one pass, cached)."""
    state = state or TaskState()
    paths, skipped = list_images(folder)
    key = cache_key(loaded.module, loaded.preprocess, layer, k, paths)
    cached = _load_cached(key, layer)
    if cached is not None:
        state.progress(1.0, f"{len(cached.paths)} images (cached)")
        return cached
    started = time.perf_counter()
    dataset = ImageDataset([Sample(p, 0) for p in paths], loaded.preprocess)
    values = images = units = None
    failed: list[tuple[str, str]] = []
    map_hw = (1, 1)
    done = 0
    state.progress(0.0, f"0 / {len(paths)} images")
    with torch.inference_mode():
        for batch, _, index, errors in make_loader(dataset, batch_size, workers=workers):
            state.check()
            out = run_to(loaded.module, normalize(batch, loaded.preprocess), layer)
            if out.dim() not in (2, 4):
                raise ValueError(f"{layer}: its output is {tuple(out.shape[1:])}, neither a map (C, H, W) nor a vector")
            best, where = image_maxima(out)
            for i, error in enumerate(errors):
                if error:
                    failed.append((paths[int(index[i])], error))
                    best[i] = -np.inf
            if values is None:
                c = best.shape[1]
                values, images = np.full((c, 0), -np.inf, np.float32), np.zeros((c, 0), np.int32)
                units, map_hw = np.zeros((c, 0, 2), np.int32), tuple(out.shape[2:]) if out.dim() == 4 else (1, 1)
            values, images, units = merge_top(values, images, units, best, where, int(index[0]), k)
            done += len(errors)
            state.progress(done / len(paths), f"{done} / {len(paths)} images")
    if failed and len(failed) == len(paths):
        raise ImageError(f"{os.path.basename(os.path.abspath(folder))}: none of its images could be decoded "
                         f"({os.path.basename(failed[0][0])}: {failed[0][1]})")
    values, images, units = _pad(values, images, units, k)
    top = TopPatches(layer, tuple(paths), values.astype(np.float32), images.astype(np.int32), units.astype(np.int32),
                     (int(map_hw[0]), int(map_hw[1])), int(loaded.preprocess.input_size), tuple(skipped + failed),
                     seconds=time.perf_counter() - started)
    _store(key, top)
    return top


def _pad(values, images, units, k):
    """Fewer than ``k`` images: fill the missing ranks with -inf / -1."""
    missing = k - values.shape[1]
    if missing <= 0:
        return values, images, units
    c = values.shape[0]
    return (np.concatenate([values, np.full((c, missing), -np.inf, np.float32)], 1),
            np.concatenate([images, np.full((c, missing), -1, np.int32)], 1),
            np.concatenate([units, np.zeros((c, missing, 2), np.int32)], 1))


def input_box(row, unit: tuple[int, int], input_size: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) input pixels, inclusive, that unit (row, col) of ``row`` sees;
    the whole input for a vector layer or a unit whose box misses the input."""
    whole = (0, input_size - 1, 0, input_size - 1)
    if row is None or not spatial_row(row):
        return whole
    seen = unit_field(row, unit[0], unit[1], (input_size, input_size)).seen
    if seen[0] is None or seen[1] is None:
        return whole
    return (seen[0][0], seen[0][1], seen[1][0], seen[1][1])


def photo_box(preprocess, photo_wh: tuple[int, int], box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Input-pixel ``box`` (top, bottom, left, right) → (left, top, right, bottom) on the original photo
    (the model input is the preprocessing's crop box resized to the input size)."""
    w, h = photo_wh
    r0, r1, c0, c1 = box
    left, top, right, bottom = crop_frame(preprocess, (h, w)).edges_to_photo(c0, r0, c1 + 1, r1 + 1)
    x0, y0 = math.floor(left + 1e-6), math.floor(top + 1e-6)
    x1, y1 = math.ceil(right - 1e-6), math.ceil(bottom - 1e-6)
    return max(0, x0), max(0, y0), min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))


def crop_patches(top: TopPatches, channel: int, preprocess, row=None) -> tuple[Patch, ...]:
    """The patches of ``channel``: each rank's photo decoded at full size and cut to its unit's field."""
    channel = check_channel(channel, top.channels, top.layer)
    patches = []
    for rank in range(top.values.shape[1]):
        index = int(top.images[channel, rank])
        if index < 0 or not np.isfinite(top.values[channel, rank]):
            break
        unit = (int(top.units[channel, rank, 0]), int(top.units[channel, rank, 1]))
        box = input_box(row, unit, top.input_size)
        path = top.paths[index]
        try:
            rgb = load_image(path).rgb
        except ImageError:  # changed since the pass: that rank shows nothing
            continue
        x0, y0, x1, y1 = photo_box(preprocess, (rgb.shape[1], rgb.shape[0]), box)
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        if max(crop.shape[:2]) > PATCH_MAX_SIDE:
            scale = PATCH_MAX_SIDE / max(crop.shape[:2])
            size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
            crop = np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR))
        patches.append(Patch(rank, float(top.values[channel, rank]), path, unit, box, (x0, y0, x1, y1), crop))
    return tuple(patches)


@task(Scope.FOLDER, (Need.MODEL_COPY,), title="Finding the top patches…")
def top_patches_task(inputs: TaskInputs, state: TaskState) -> TopPatchesResult:
    """args: ``folder``, ``layer``, ``channel`` (default 0), ``k`` (default 9). It runs on a private copy
    of the model (a folder pass may take minutes; the live model stays free for the views)."""
    args, loaded = inputs.args, inputs.model
    layer = str(args["layer"])
    row = layer_row(loaded.module, layer, loaded.preprocess.input_size, inputs.rows)
    channel = check_channel(int(args.get("channel", 0)), row.out_shape[0], layer)  # before the pass, not after
    top = scan_top(loaded, args["folder"], layer, k=int(args.get("k", TOP_K)), state=state)
    state.check()
    return TopPatchesResult(top, channel, crop_patches(top, channel, loaded.preprocess, row),
                            row.rf if spatial_row(row) else None)
