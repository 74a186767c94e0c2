"""Writers of small hostile files, one function per class, each into a given folder.

Used by the ``test_hostile_*`` tests; run ``python tests/hostile_corpus.py`` to time how long
convviz takes to refuse each class (the figures in the README's security notes).
New formats: add a writer here and to :data:`REFUSED_FORMATS` / :func:`allowed_images`.
"""
from __future__ import annotations

import io
import os
import random
import stat
import zipfile
from typing import List

import numpy as np
import torch
from PIL import Image
from torch import nn

#: Pillow formats convviz must refuse (written by Pillow itself where it can).
REFUSED_FORMATS = ("EPS", "PDF", "BLP", "DDS", "AVIF", "JPEG2000", "ICNS", "ICO", "IM", "MSP", "PCX", "QOI",
                   "SGI", "SPIDER", "XBM")


class MarkerWriter(nn.Module):
    """A TorchScript module that writes ``path`` when called and ``path + '.load'`` when loaded."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.seen = 0

    def forward(self, x):
        t = torch.from_file(self.path, shared=True, size=4, dtype=torch.uint8)
        t.copy_(torch.tensor([82, 85, 78, 10], dtype=torch.uint8))
        self.seen = int(t.sum())
        return x.mean(dim=(2, 3))

    @torch.jit.export
    def __getstate__(self) -> List[str]:
        return [self.path]

    @torch.jit.export
    def __setstate__(self, state: List[str]) -> None:
        self.path = state[0]
        self.training = False
        t = torch.from_file(self.path + ".load", shared=True, size=4, dtype=torch.uint8)
        t.copy_(torch.tensor([76, 79, 65, 68], dtype=torch.uint8))
        self.seen = int(t.sum())


def torchscript_marker(folder, marker: str, name: str = "evil.ts") -> str:
    """A scripted module that writes ``marker`` (forward) and ``marker.load`` (load time)."""
    path = os.path.join(folder, name)
    torch.jit.script(MarkerWriter(marker)).save(path)
    return path


def eps_file(folder, name: str = "picture.eps") -> str:
    """A PostScript file (an infinite loop for Ghostscript) under any name (.png, .jpg …)."""
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n{ } loop\nshowpage\n%%EOF\n")
    return path


def fake_gs(folder) -> tuple[str, str]:
    """A ``gs`` script that records being called; returns (its folder, the record file)."""
    bindir = os.path.join(folder, "fakebin")
    os.makedirs(bindir, exist_ok=True)
    record = os.path.join(folder, "gs-was-called")
    for exe in ("gs", "gswin32c", "gswin64c"):
        script = os.path.join(bindir, exe)
        with open(script, "w") as handle:
            handle.write(f"#!/bin/sh\necho \"$@\" >> '{record}'\nexit 1\n")
        os.chmod(script, os.stat(script).st_mode | stat.S_IEXEC)
    return bindir, record


def refused_format(folder, fmt: str, name: str | None = None) -> str | None:
    """A small valid image in ``fmt`` (None when this Pillow cannot write it)."""
    path = os.path.join(folder, name or f"image.{fmt.lower()}")
    img = Image.linear_gradient("L").resize((32, 32)).convert("RGB")
    if fmt in ("XBM",):
        img = img.convert("1")
    if fmt == "BLP":
        img = img.convert("P")
    if fmt == "SPIDER":
        img = img.convert("F")
    try:
        img.save(path, format=fmt)
    except (KeyError, OSError, ValueError):
        return None
    return path


def allowed_images(folder) -> dict[str, str]:
    """One small valid file per allowed format (format name → path)."""
    img = Image.linear_gradient("L").resize((24, 16)).convert("RGB")
    out = {}
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp"), ("GIF", "gif"), ("TIFF", "tif"),
                     ("WEBP", "webp"), ("PPM", "ppm"), ("TGA", "tga")):
        path = os.path.join(folder, f"ok.{ext}")
        img.save(path, format=fmt)
        out[fmt] = path
    pgm = os.path.join(folder, "ok.pgm")
    img.convert("L").save(pgm, format="PPM")
    out["PGM"] = pgm
    return out


def fuzzed(source: str, folder, count: int, seed: int = 0) -> list[str]:
    """``count`` copies of ``source`` with a few random bytes changed or the tail cut off."""
    data = open(source, "rb").read()
    rng = random.Random(seed)
    paths = []
    base = os.path.basename(source)
    for i in range(count):
        buf = bytearray(data)
        if i % 4 == 3:
            buf = buf[: rng.randrange(1, len(buf))]
        else:
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        path = os.path.join(folder, f"fuzz{i}-{base}")
        with open(path, "wb") as handle:
            handle.write(bytes(buf))
        paths.append(path)
    return paths


def deep_png(folder, width: int, height: int, name: str = "deep16.png") -> str:
    """A 16-bit grayscale PNG (a gradient, so tiny when compressed)."""
    row = (np.arange(width, dtype=np.uint32) * 65535 // max(1, width - 1)).astype(np.uint16)
    img = Image.new("I;16", (width, height))
    img.paste(Image.frombytes("I;16", (width, 1), row.tobytes()).resize((width, height), Image.NEAREST))
    path = os.path.join(folder, name)
    img.save(path, format="PNG", compress_level=1)
    return path


# --- checkpoints -------------------------------------------------------------------------

def tiny_state(num_classes: int = 2):
    """A squeezenet1_1 state dict with ``num_classes`` outputs (the smallest torchvision net)."""
    import torchvision

    return torchvision.models.squeezenet1_1(num_classes=num_classes).state_dict()


def checkpoint(folder, name: str = "ckpt.pt", state=None, **fields) -> str:
    """A convviz checkpoint with valid defaults, any field overridden (``None`` drops it)."""
    payload = {
        "format": "convviz-checkpoint-1", "arch": "squeezenet1_1", "labels": ["cat", "dog"],
        "preprocess": {"input_size": 64, "crop_pct": 0.875, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                       "interpolation": "bilinear"},
        "state_dict": state if state is not None else tiny_state(2),
        "training": {"epochs": 1, "history": [{"loss": 0.5}]},
    }
    for key, value in fields.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    path = os.path.join(folder, name)
    torch.save(payload, path)
    return path


def huge_arch_checkpoint(folder, arch: str = "vit_h_14") -> str:
    """A tiny file naming a ~2.5 GB architecture (the state dict holds one small tensor)."""
    return checkpoint(folder, "huge.pt", arch=arch, state={"heads.head.weight": torch.zeros(2, 8)})


def nan_checkpoint(folder) -> str:
    """A valid checkpoint whose classifier weights are NaN."""
    state = tiny_state(2)
    state["classifier.1.weight"] = torch.full_like(state["classifier.1.weight"], float("nan"))
    return checkpoint(folder, "nan.pt", state=state)


def zip_bomb(folder, inflated_mb: int = 256, name: str = "bomb.pt") -> str:
    """A torch zip whose storage entry is deflated zeros: a tiny file declaring ``inflated_mb`` inflated."""
    path = os.path.join(folder, name)
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            if info.filename.endswith("/data/0"):
                entry = zipfile.ZipInfo(info.filename)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with out.open(entry, "w", force_zip64=True) as handle:
                    zeros = bytes(2**20)
                    for _ in range(inflated_mb):
                        handle.write(zeros)
            else:
                out.writestr(info.filename, source.read(info), compress_type=zipfile.ZIP_STORED)
    return path


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def pickled_object(folder, protocol: int, name: str | None = None) -> str:
    """A file whose pickle names ``os.system`` (written with pickle ``protocol``)."""
    path = os.path.join(folder, name or f"evil-p{protocol}.pth")
    torch.save({"state_dict": _Evil()}, path, pickle_protocol=protocol)
    return path


def _time_refusals() -> None:
    """Print how long each hostile class takes to be refused (run as a script)."""
    import sys
    import tempfile
    import time

    torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from convviz.core.images import ImageError, load_image
    from convviz.core.model.files import ModelError
    from convviz.core.model.loading import load_model

    with tempfile.TemporaryDirectory() as folder:
        marker = os.path.join(folder, "m")
        cases = [
            ("TorchScript named .pt (no opt-in)", torchscript_marker(folder, marker, "x.pt"), load_model),
            ("EPS named .png", eps_file(folder, "x.png"), load_image),
            ("AVIF", refused_format(folder, "AVIF") or eps_file(folder), load_image),
            ("pickle protocol 0", pickled_object(folder, 0), load_model),
            ("pickle protocol 4", pickled_object(folder, 4), load_model),
            ("zip bomb (256 MB inflated)", zip_bomb(folder), load_model),
            ("checkpoint naming vit_h_14", huge_arch_checkpoint(folder), load_model),
            ("checkpoint input_size 20000", checkpoint(folder, "big.pt", preprocess={"input_size": 20000}), load_model),
            ("checkpoint labels mismatch", checkpoint(folder, "lab.pt", labels=["a", "b", "c"]), load_model),
        ]
        for label, path, load in cases:
            started = time.perf_counter()
            try:
                load(path)
                outcome = "LOADED"
            except (ImageError, ModelError) as exc:
                outcome = str(exc)[:80]
            print(f"{label:36} {(time.perf_counter() - started) * 1000:8.1f} ms  {outcome}")
        print("marker written:", os.path.exists(marker) or os.path.exists(marker + ".load"))


if __name__ == "__main__":
    _time_refusals()
