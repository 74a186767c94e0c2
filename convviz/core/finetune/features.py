"""Images → model input → backbone features, once per image, batched.

Decoding uses Pillow's JPEG draft mode (the decoder scales by 1/2…1/8 itself). It can run in a
``DataLoader`` worker *process* (no threads in core), overlapped with the forward pass; with ONNX
Runtime, which keeps every core busy, the fast path decodes in the main loop instead (a decode
process only competed with it on 2 cores: measured ~0.5 s slower per 400 images). The forward is
a :class:`~.backend.FeatureBackend`; features already in the :mod:`.feature_cache` are read, not
computed.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..images import ALLOWED_FORMATS, ImageError, load_image, pil_to_rgb
from ..model.preprocess import Preprocess
from .augment import augmented_input, build_transform, model_input_uint8, sample_seed
from .feature_cache import cache_root, file_digest, open_store
from .scan import Sample

if TYPE_CHECKING:
    from .backend import FeatureBackend


def decode_rgb(path: str, min_side: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8; JPEGs are decoded at the smallest draft scale whose short side ≥ ``min_side``;
    everything else (and every failure, with its one-line reason) goes through :func:`load_image`."""
    try:
        with Image.open(path, formats=ALLOWED_FORMATS) as img:  # the allow-list, as load_image
            if img.format in ("JPEG", "MPO") and min_side:
                w, h = img.size
                scale = min(w, h) / min_side
                img.draft("RGB", (math.ceil(w / scale), math.ceil(h / scale)) if scale > 1 else img.size)
                img.load()
                return pil_to_rgb(img)
    except Exception:  # header problems: load_image gives the one-line reason
        pass
    return load_image(path).rgb


def normalize(batch: torch.Tensor, preprocess: Preprocess, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, 3, S, S) → normalised float32 on ``device`` (channels_last)."""
    mean = torch.tensor(preprocess.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(preprocess.std, device=device).view(1, 3, 1, 1) * 255
    x = (batch.to(device, non_blocking=True).float() - mean) / std
    return x.contiguous(memory_format=torch.channels_last)


class ImageDataset(torch.utils.data.Dataset):
    """Samples → (uint8 image, label, index, error). A file that fails to decode yields a blank
    image and its one-line error, so one bad file never stops a run.

    ``transform`` (from :func:`augment.build_transform`) makes it an augmenting dataset; each item
    is then seeded by (seed, epoch, index) exactly as the preview grid is.
    """

    def __init__(self, samples: Sequence[Sample], preprocess: Preprocess, transform=None, seed: int = 0):
        self.samples, self.preprocess, self.transform, self.seed, self.epoch = list(samples), preprocess, transform, seed, 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        size = self.preprocess.input_size
        try:
            side = round(size / self.preprocess.crop_pct)
            rgb = decode_rgb(sample.path, side if self.transform is None else 2 * side)
            if self.transform is None:
                image = model_input_uint8(rgb, self.preprocess)
            else:
                image = augmented_input(rgb, self.transform, sample_seed(self.seed, self.epoch, index))
            return image, sample.label, index, ""
        except (ImageError, OSError, ValueError) as exc:
            return torch.zeros(3, size, size, dtype=torch.uint8), sample.label, index, str(exc).splitlines()[0]


def first_epoch_preview(samples: Sequence[Sample], spec, preprocess: Preprocess, seed: int,
                        count: int = 8) -> tuple[list[np.ndarray], list[str]]:
    """What training with ``seed`` draws in epoch 1 for the first ``count`` of ``samples`` (``scan.train``,
    in order): the training dataset's own items as (S, S, 3) uint8, and their decode errors ("" if none)."""
    transform = build_transform(spec, preprocess) if spec.active else None  # as the training loop builds it
    dataset = ImageDataset(list(samples)[:count], preprocess, transform, seed=seed)
    dataset.epoch = 0
    items = [dataset[i] for i in range(len(dataset))]
    return [image.permute(1, 2, 0).numpy() for image, *_ in items], [error for *_, error in items]


def make_loader(dataset: ImageDataset, batch_size: int, *, shuffle: bool = False, seed: int = 0, workers: int | None = None):
    """A DataLoader; one worker process decodes while the main process computes (2-core friendly)."""
    if workers is None:
        workers = 1 if len(dataset) > 2 * batch_size and (os.cpu_count() or 1) > 1 else 0
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                                       generator=generator, persistent_workers=False)


def extract_features(backbone: FeatureBackend, samples: Sequence[Sample], preprocess: Preprocess, *,
                     batch_size: int = 64, mirror: bool = False, workers: int | None = None,
                     cache: bool = True) -> Iterator[tuple[int, dict]]:
    """Yield ``(images_done, state)`` once per batch; the last ``state`` holds ``features`` (N, D),
    ``labels`` (N,), ``ok`` (N,) bool and ``errors`` {index: reason} (earlier ones hold no
    ``features``). ``mirror`` also keeps the mirror image's features as ``mirror_features`` (N, D),
    image and mirror run through the backbone as one batch. With ``cache``, images whose features
    are on disk (:mod:`.feature_cache`, keyed by file content) are not decoded again, and the new
    ones are stored, cancelled runs included."""
    views = ("image", "mirror") if mirror else ("image",)
    key = getattr(backbone, "cache_key", None) if cache else None
    stores = [open_store(cache_root(), key, preprocess, view) for view in views]
    digests = [file_digest(s.path) if stores[0] is not None else None for s in samples]
    known = [store.get(digests) if store is not None else {} for store in stores]
    cached = [i for i in range(len(samples)) if all(i in k for k in known)]
    todo = sorted(set(range(len(samples))) - set(cached))
    rows: list[dict[int, torch.Tensor]] = [{i: torch.from_numpy(k[i]) for i in cached} for k in known]
    labels = torch.tensor([s.label for s in samples], dtype=torch.long)
    ok, errors = torch.ones(len(samples), dtype=torch.bool), {}
    fresh: list[int] = []
    try:
        if cached:
            yield len(cached), {"labels": labels, "ok": ok, "errors": errors}
        loader = make_loader(ImageDataset([samples[i] for i in todo], preprocess), batch_size, workers=workers) \
            if todo else ()
        for images, _, indices, errs in loader:
            x = normalize(images, preprocess, backbone.device)
            out = backbone(torch.cat([x, x.flip(3)]) if mirror else x).float().cpu()
            parts = (out[:len(x)], out[len(x):]) if mirror else (out,)
            for row, (position, err) in enumerate(zip(indices.tolist(), errs)):
                index = todo[position]
                for view_rows, part in zip(rows, parts):
                    view_rows[index] = part[row]
                if err:
                    ok[index], errors[index] = False, err
                elif digests[index] is not None:
                    fresh.append(index)
            if len(rows[0]) < len(samples):
                yield len(rows[0]), {"labels": labels, "ok": ok, "errors": errors}
        stacked = [torch.stack([r[i] for i in range(len(samples))]) if samples else torch.zeros(0, 0) for r in rows]
        state = {"features": stacked[0], "labels": labels, "ok": ok, "errors": errors}
        if mirror:
            state["mirror_features"] = stacked[1]
        yield len(samples), state
    finally:  # what was computed is kept, a cancelled run's too
        for store, view_rows in zip(stores, rows):
            if store is not None and fresh:
                store.add([digests[i] for i in fresh], torch.stack([view_rows[i] for i in fresh]).numpy())
