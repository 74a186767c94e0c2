"""Class names: ImageNet's from torchvision's weight metadata (no download)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, as torchvision ships them."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def labels_for(num_classes: int, known: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """``known`` when it fits, ImageNet names for 1000 outputs, else ``class i``."""
    if known is not None and len(known) == num_classes:
        return tuple(known)
    if num_classes == 1000:
        return imagenet_labels()
    return tuple(f"class {i}" for i in range(num_classes))
