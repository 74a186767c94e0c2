"""Backbone features cached on disk per (image content, network, input, view).

A second fine-tune on the same folder — or on a grown one — computes only the images it has not
seen: each image is keyed by the SHA-256 of its file's bytes (renaming or moving it keeps its
features; editing it does not), and a store is keyed by what produced the numbers: the network
(layers, weights, taps, :data:`~.backend.CACHE_VERSION`), the preprocessing (size, crop, scaling,
interpolation) and the view (the image or its mirror image). Stores live under
``<cache dir>/features/<key>/`` as ``.npz`` shards read with ``allow_pickle=False`` (a damaged or
foreign shard is ignored, never executed). ``CONVVIZ_FEATURE_CACHE=0`` turns the cache off.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np

from ..model.preprocess import Preprocess
from ..atomic import atomic_write

MAX_SHARDS = 16  #: more shards than this are merged into one on the next write
_CHUNK = 1 << 20


def cache_root() -> str:
    """``$CONVVIZ_CACHE_DIR`` or ``$XDG_CACHE_HOME/convviz`` (``~/.cache/convviz``): prepared graphs
    (``graphs/``) and cached features (``features/``)."""
    return os.environ.get("CONVVIZ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "convviz")


def enabled() -> bool:
    """False when ``CONVVIZ_FEATURE_CACHE`` is ``0`` / ``off`` / ``no``."""
    return os.environ.get("CONVVIZ_FEATURE_CACHE", "1").strip().lower() not in ("0", "off", "no", "false")


def file_digest(path: str) -> str | None:
    """SHA-256 of the file's bytes (hex), or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def store_key(network_key: str, preprocess: Preprocess, view: str) -> str:
    """The folder name of a store: what produced the features, hashed."""
    text = f"{network_key}|{preprocess.input_size}|{preprocess.crop_pct}|{preprocess.mean}|{preprocess.std}|" \
           f"{preprocess.interpolation}|{view}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FeatureStore:
    """Features of one (network, preprocessing, view), by image digest."""

    def __init__(self, folder: str):
        self.folder = folder
        self._known: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._known is None:
            self._known = {}
            for shard in self._shards():
                try:
                    with np.load(shard, allow_pickle=False) as data:
                        keys, feats = data["keys"], data["features"]
                    if feats.ndim != 2 or len(keys) != len(feats):
                        continue
                    self._known.update(zip(keys.astype(str).tolist(), feats.astype(np.float32)))
                except Exception:  # a damaged or foreign shard: recompute, never fail
                    continue
        return self._known

    def _shards(self) -> list[str]:
        try:
            return sorted(os.path.join(self.folder, f) for f in os.listdir(self.folder) if f.endswith(".npz"))
        except OSError:
            return []

    def get(self, digests: Sequence[str | None]) -> dict[int, np.ndarray]:
        """{index: features} for the digests already stored."""
        known = self._load()
        return {i: known[d] for i, d in enumerate(digests) if d is not None and d in known}

    def add(self, digests: Sequence[str], features: np.ndarray) -> None:
        """Store ``features`` (N, D) for ``digests`` (one new shard; shards merged past :data:`MAX_SHARDS`)."""
        if not len(digests):
            return
        known = self._load()
        known.update(zip(digests, np.asarray(features, np.float32)))
        shards = self._shards()
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            if len(shards) >= MAX_SHARDS:
                keys, feats = list(known), np.stack(list(known.values()))
            else:
                keys, feats = list(digests), np.asarray(features, np.float32)
            name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
            atomic_write(os.path.join(self.folder, f"{name}.npz"),
                         lambda handle: np.savez(handle, keys=np.asarray(keys), features=feats))
            if len(shards) >= MAX_SHARDS:
                for old in shards:
                    if not old.endswith(f"{name}.npz"):
                        os.remove(old)
        except Exception:  # a full or read-only disk: the run goes on, only uncached
            pass


def open_store(root: str, network_key: str | None, preprocess: Preprocess, view: str) -> FeatureStore | None:
    """The store under ``root`` for these settings; None when caching is off or the network has no key."""
    if not network_key or not enabled():
        return None
    return FeatureStore(os.path.join(root, "features", store_key(network_key, preprocess, view)))
