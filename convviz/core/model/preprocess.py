"""Model input from a display image: resize the short side, centre-crop, normalise.

The crop box is found on the original picture first and only that box is resized, so a
10000×10 panorama never becomes a 256000×256 intermediate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input (timm / torchvision conventions)."""

    input_size: int = 224
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    @property
    def scaling_text(self) -> str:
        """How pixel values x (0…255) become the model's input, in words: TF's ``(x − 127) / 128``,
        ImageNet's mean/std, or the numbers."""
        mean, std = (round(m * 255, 3) for m in self.mean), (round(s * 255, 3) for s in self.std)
        mean, std = tuple(mean), tuple(std)
        if len(set(mean)) == 1 and len(set(std)) == 1:
            return f"(x − {mean[0]:g}) / {std[0]:g}"
        if (self.mean, self.std) == (IMAGENET_MEAN, IMAGENET_STD):
            return "(x/255 − ImageNet mean) / ImageNet std"
        return f"(x/255 − {self.mean}) / {self.std}"

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Centre square (left, top, right, bottom) in original pixels that becomes the input."""
        side = min(width, height) * self.crop_pct
        left, top = (width - side) / 2, (height - side) / 2
        return left, top, left + side, top + side

    @property
    def resample(self) -> int:
        """Pillow's filter for :attr:`interpolation`."""
        return _RESAMPLE.get(self.interpolation, Image.BILINEAR)

    def to_uint8(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3+) uint8 → the photo as the model sees it before scaling: the crop box resized to
        (S, S, 3) uint8 with the model's own interpolation (the one home of photo → model pixels)."""
        img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
        box = self.crop_box(img.width, img.height)
        return np.asarray(img.resize((self.input_size, self.input_size), self.resample, box=box))

    def scale(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, 3) pixel values 0…255 (the model's size or any other) → the model's scaling, float32 (3, H, W)."""
        arr = pixels.astype(np.float32) / 255.0
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def to_array(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 → normalised float32 (3, S, S)."""
        return self.scale(self.to_uint8(rgb))

    def to_tensor(self, rgb: np.ndarray):
        """(H, W, 3) uint8 → torch float32 batch (1, 3, S, S)."""
        import torch

        return torch.from_numpy(self.to_array(rgb))[None]
