"""Which augmentations, how strong: plain data, torch-free (the GUI builds its controls from it at start-up)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

#: Strength used when an augmentation is switched on by name (CLI ``--augment hflip,crop``).
DEFAULT_STRENGTHS = {"grayscale": 0.2, "hflip": 0.5, "vflip": 0.5, "crop": 0.3, "jitter": 0.3, "translate": 0.1, "rotate": 15.0}


@dataclass(frozen=True)
class AugmentSpec:
    """Each field 0 = off. Probabilities for grayscale/hflip/vflip; crop = largest fraction of the
    area cut away; jitter = brightness/contrast/saturation strength; translate = fraction of the
    side; rotate = degrees."""

    grayscale: float = 0.0
    hflip: float = 0.0
    vflip: float = 0.0
    crop: float = 0.0
    jitter: float = 0.0
    translate: float = 0.0
    rotate: float = 0.0

    @property
    def active(self) -> bool:
        return any(v > 0 for v in asdict(self).values())

    @classmethod
    def from_names(cls, names: str | list[str]) -> "AugmentSpec":
        """``"hflip,crop"`` → those switched on at their default strength; ValueError on unknown names."""
        items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
        unknown = [n for n in items if n not in DEFAULT_STRENGTHS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r} (choose from {','.join(DEFAULT_STRENGTHS)})")
        return cls(**{n: DEFAULT_STRENGTHS[n] for n in items})

    def names(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) > 0]
