"""The fast path: decode → backbone features once, batched, through a prepared graph.

* Decoding uses Pillow's JPEG draft mode (the decoder scales by 1/2…1/8 itself). It can run in a
  ``DataLoader`` worker *process* (no threads in core), overlapped with the forward pass; with
  ONNX Runtime, which keeps every core busy, the fast path decodes in the main loop instead
  (a decode process only competed with it on 2 cores: measured ~0.5 s slower per 400 images).
* The backbone is the model without its head (its output is the head's input). Eager
  ``channels_last`` torch is the reference. Faster forwards, each cached on disk per
  (architecture, weights hash, input size, library versions) under the user cache dir (mode 0700)
  and prepared once: an ONNX Runtime session on a ``torch.onnx.export(dynamo=True)`` graph
  (:mod:`.onnx_backbone`, preferred; for the bundled architecture the package's weight-less graph
  is filled with the model's own weights instead, :mod:`.bundled_graph`, so nothing is exported)
  or a traced, frozen TorchScript graph (when onnxruntime is
  missing or the export fails). A loaded graph is checked against eager torch on a probe input
  (max abs difference ≤ 1e-4) and ignored when it differs. The cache holds only files this code
  wrote; TorchScript is code, so never point ``CONVVIZ_CACHE_DIR`` at a folder others can write.
"""
from __future__ import annotations

import copy
import hashlib
import io
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..images import ALLOWED_FORMATS, ImageError, load_image, pil_to_rgb
from ..preprocess import Preprocess
from ..taps import taps_of
from .checkpoint import atomic_write
from .heads import strip_head
from .onnx_backbone import agrees, eager_features, probe
from .scan import Sample

#: bump when what a cached graph or feature computes changes for the same weights (v2: timm's
#: ``tf_`` Lite networks, TF "SAME" padding, replaced ``efficientnet_lite0`` as the bundled model)
CACHE_VERSION = 2


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


def model_input_uint8(rgb: np.ndarray, preprocess: Preprocess) -> torch.Tensor:
    """Centre crop + resize (:meth:`Preprocess.to_uint8`) kept as uint8 (3, S, S)."""
    return torch.from_numpy(preprocess.to_uint8(rgb).copy()).permute(2, 0, 1)


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
        from .augment import augmented_input, sample_seed

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


def make_loader(dataset: ImageDataset, batch_size: int, *, shuffle: bool = False, seed: int = 0, workers: int | None = None):
    """A DataLoader; one worker process decodes while the main process computes (2-core friendly)."""
    if workers is None:
        workers = 1 if len(dataset) > 2 * batch_size and (os.cpu_count() or 1) > 1 else 0
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                                       generator=generator, persistent_workers=False)


def headless(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without its classifier, in eval mode, channels_last."""
    return strip_head(copy.deepcopy(model)).eval().to(memory_format=torch.channels_last)


def weights_hash(model: nn.Module) -> str:
    """Key of what ``model`` computes: its layers (their classes and settings: padding rules differ
    between networks with the same weights), its weights and :data:`CACHE_VERSION`."""
    return state_hash(model.state_dict(), repr(model))


def state_hash(state: dict[str, torch.Tensor], network: str) -> str:
    """Key of a state dict run by the network ``network`` describes (with :data:`CACHE_VERSION`)."""
    digest = hashlib.sha256(f"{CACHE_VERSION}|{network}".encode())
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def cache_root() -> str:
    """``$CONVVIZ_CACHE_DIR`` or ``$XDG_CACHE_HOME/convviz`` (``~/.cache/convviz``): prepared graphs
    (``graphs/``) and cached features (``features/``)."""
    return os.environ.get("CONVVIZ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "convviz")


def cache_dir() -> str:
    """Where prepared graphs are cached: ``<cache_root()>/graphs``."""
    return os.path.join(cache_root(), "graphs")


def graph_path(backbone: nn.Module, input_size: int, arch: str = "") -> str:
    key = f"{arch}|{weights_hash(backbone)}|{input_size}|{torch.__version__}"
    safe = "".join(c if c.isalnum() else "_" for c in arch)[:40]
    return os.path.join(cache_dir(), f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.ts")


def prepare_graph(backbone: nn.Module, input_size: int, path: str) -> str:
    """Trace and freeze ``backbone`` (weights become constants, BatchNorm folded); save atomically at ``path``."""
    example = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python control flow in timm/torchvision
        traced = torch.jit.trace(copy.deepcopy(backbone).eval().to(memory_format=torch.contiguous_format), example)
        graph = torch.jit.freeze(traced.eval())  # optimize_for_inference graphs (MKLDNN) cannot be saved
        graph(example)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(graph, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return path


def load_graph(path: str, backbone: nn.Module, input_size: int):
    """The cached graph at ``path`` if it exists and matches eager torch on a probe, else None."""
    if not os.path.isfile(path):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            graph = torch.jit.load(path, map_location="cpu")
        with torch.no_grad():
            same = agrees(graph, eager_features(backbone, probe(input_size)), input_size)
    except Exception:  # a stale or damaged cache file is never fatal: eager torch is the fallback
        return None
    return graph if same else None


class FeatureBackbone:
    """Callable (N, 3, S, S) normalised float → (N, D) features; prepared graph or eager torch.

    ``graph``: ``"auto"`` uses the cached graph and prepares it when missing (one-time cost),
    ``"cached"`` uses it only if already prepared (e.g. by a background job), ``"eager"`` never.
    ``kind`` says what runs: ``"onnx"`` (ONNX Runtime), ``"prepared"`` (TorchScript) or ``"eager"``.
    """

    def __init__(self, model: nn.Module, input_size: int, *, arch: str = "", device: str = "cpu", graph: str = "auto",
                 on_status: Callable[[str], None] | None = None):
        self.eager = headless(model).to(device)
        self.device, self.input_size, self.kind, self.graph = device, input_size, "eager", None
        self.taps = taps_of(self.eager)
        self.cache_key = f"{weights_hash(self.eager)}|taps{self.taps}"  #: what the features are (feature cache)
        arch += "".join(f"+tap{t}" for t in self.taps)  # the graph's outputs differ: so does its cache key
        if graph not in ("auto", "cached", "eager"):
            raise ValueError(f"graph must be auto, cached or eager, not {graph!r}")
        if device == "cpu" and graph != "eager":
            self.graph, self.kind = self._onnx(arch, graph == "auto", on_status), "onnx"
            if self.graph is None:
                self.graph, self.kind = self._torchscript(arch, graph == "auto", on_status), "prepared"
            if self.graph is None:
                self.kind = "eager"

    def _onnx(self, arch, prepare, on_status):
        from . import onnx_backbone

        if not onnx_backbone.available():
            return None
        from .bundled_graph import ARCHS, GRAPH_SIZES, load_bundled

        if arch in ARCHS and self.input_size in GRAPH_SIZES:  # shipped topology + this model's weights: no export
            runner = load_bundled(self.eager.state_dict(), self.input_size, reference=self.eager)
            if runner is not None:
                return runner
        path = onnx_backbone.onnx_path(cache_dir(), arch, weights_hash(self.eager), self.input_size)
        runner = onnx_backbone.load_onnx(path, self.eager, self.input_size)
        if runner is None and prepare:
            if on_status:
                on_status(f"exporting the backbone to ONNX once; later runs reuse it ({os.path.dirname(path)})")
            try:
                runner = onnx_backbone.load_onnx(onnx_backbone.export_onnx(self.eager, self.input_size, path),
                                                 self.eager, self.input_size)
            except Exception as exc:  # the exporter can fail on exotic models: TorchScript / eager still work
                if on_status:
                    on_status(f"ONNX export failed ({type(exc).__name__}); trying TorchScript")
        return runner

    def _torchscript(self, arch, prepare, on_status):
        path = graph_path(self.eager, self.input_size, arch)
        compiled = load_graph(path, self.eager, self.input_size)
        if compiled is None and prepare:
            if on_status:
                on_status(f"preparing a fast graph once; later runs reuse it ({os.path.dirname(path)})")
            try:
                compiled = load_graph(prepare_graph(self.eager, self.input_size, path), self.eager, self.input_size)
            except Exception as exc:  # tracing can fail on exotic models: eager torch still works
                if on_status:
                    on_status(f"fast graph unavailable ({type(exc).__name__}); using eager torch")
        return compiled

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.graph is not None:
            return self.graph(x.contiguous())
        return self.eager(x.contiguous(memory_format=torch.channels_last))


def extract_features(backbone, samples: Sequence[Sample], preprocess: Preprocess, *,
                     batch_size: int = 64, mirror: bool = False, workers: int | None = None,
                     cache: bool = True) -> Iterator[tuple[int, dict]]:
    """Yield ``(images_done, state)`` once per batch; the last ``state`` holds ``features`` (N, D),
    ``labels`` (N,), ``ok`` (N,) bool and ``errors`` {index: reason} (earlier ones hold no
    ``features``). ``mirror`` also keeps the mirror image's features as ``mirror_features`` (N, D),
    image and mirror run through the backbone as one batch. With ``cache``, images whose features
    are on disk (:mod:`.feature_cache`, keyed by file content) are not decoded again, and the new
    ones are stored, cancelled runs included."""
    from .feature_cache import file_digest, open_store

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
