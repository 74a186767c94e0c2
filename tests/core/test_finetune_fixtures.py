"""Helpers (no tests): tiny generated image folders and a tiny model for the fine-tune tests."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from convviz.core.model.loading import LoadedModel, build_architecture
from convviz.core.model.preprocess import Preprocess

TINY_ARCH = "mobilenet_v3_small"


def make_folder(root, classes=("blue", "red"), per_class=6, size=40, fmt="png", seed=0) -> str:
    """``root/<class>/<i>.png``: class c is noise around a distinct colour (easy to separate)."""
    rng = np.random.default_rng(seed)
    colours = {"red": (200, 40, 40), "blue": (40, 40, 200), "green": (40, 200, 40)}
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        base = np.array(colours.get(c, (128, 128, 128)), dtype=np.int16)
        for i in range(per_class):
            arr = np.clip(base + rng.integers(-40, 40, (size, size + 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(os.path.join(root, c, f"{i}.{fmt}"))
    return str(root)


def tiny_model(input_size: int = 32) -> LoadedModel:
    """torchvision mobilenet_v3_small with random weights (seeded), small input."""
    import torch

    torch.manual_seed(0)
    module, _, _, _ = build_architecture(TINY_ARCH, require_weights=False)
    return LoadedModel(TINY_ARCH, "tiny", module.eval(), Preprocess(input_size=input_size, crop_pct=1.0))
