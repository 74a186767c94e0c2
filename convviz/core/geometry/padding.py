"""The padding a layer really applies: symmetric (PyTorch) or TensorFlow / ONNX "SAME".

PyTorch pads ``padding`` cells on both sides. TensorFlow's "SAME" (ONNX ``SAME_UPPER``)
pads so that the output has ``⌈W/S⌉`` cells, splitting the total unevenly when it is odd:
the extra cell goes *after* (bottom / right). timm reproduces it with ``Conv2dSame`` /
``MaxPool2dSame`` / ``AvgPool2dSame``, whose ``padding`` attribute is 0 and whose forward
calls ``F.pad`` with a split that depends on the input size. Everything that draws or
computes a layer's padding asks :func:`real_padding`, never ``module.padding`` alone.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - torch is not imported here: the Convolution panel paints without it
    from torch import nn


def tf_same_total(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Cells TF "SAME" adds along one axis: max((⌈W/S⌉ − 1)·S + D·(K − 1) + 1 − W, 0)."""
    return max((math.ceil(size / stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)


def tf_same_split(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) of TF "SAME" along one axis: before = ⌊total/2⌋, after = the rest."""
    total = tf_same_total(size, kernel, stride, dilation)
    return total // 2, total - total // 2


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[-1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


@lru_cache(maxsize=1)
def dynamic_same_classes() -> tuple[type, ...]:
    """timm's layers that pad TF-"SAME" in their forward (empty when timm is not installed)."""
    try:
        from timm.layers import AvgPool2dSame, Conv2dSame
        from timm.layers.pool2d_same import MaxPool2dSame
    except ImportError:  # pragma: no cover - timm is a dependency
        return ()
    classes = [Conv2dSame, MaxPool2dSame, AvgPool2dSame]
    try:
        from timm.layers import StdConv2dSame

        classes.append(StdConv2dSame)
    except ImportError:  # pragma: no cover - older timm
        pass
    return tuple(classes)


def is_dynamic_same(module: "nn.Module") -> bool:
    """True for a layer that pads TF "SAME" itself (its ``padding`` attribute is then 0)."""
    classes = dynamic_same_classes()
    return bool(classes) and isinstance(module, classes)


def real_padding(module: "nn.Module", in_hw: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) cells ``module`` pads an input of ``in_hw`` (H, W) with.

    Symmetric ``padding`` for ordinary layers, ``'same'`` split as torch splits it (the extra
    cell after), TF "SAME" for timm's dynamic-padding layers (needs ``in_hw``).
    """
    kernel = _pair(getattr(module, "kernel_size", 1))
    stride = _pair(getattr(module, "stride", 1) or kernel)
    dilation = _pair(getattr(module, "dilation", 1))
    if is_dynamic_same(module):
        if in_hw is None:
            raise ValueError("TF 'SAME' padding depends on the input size")
        (top, bottom), (left, right) = (tf_same_split(n, k, s, d) for n, k, s, d in zip(in_hw, kernel, stride, dilation))
        return top, bottom, left, right
    padding = getattr(module, "padding", 0)
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":  # torch: total D·(K−1), the odd cell after (stride 1 only)
        (top, bottom), (left, right) = ((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))
        return top, bottom, left, right
    ph, pw = _pair(padding)
    return ph, ph, pw, pw


def padding_text(pads: tuple[int, int, int, int]) -> str:
    """Padding as the layer table shows it: ``1`` (symmetric), ``0/1`` (before/after), per axis when they differ."""
    top, bottom, left, right = pads
    axis = [str(a) if a == b else f"{a}/{b}" for a, b in ((top, bottom), (left, right))]
    return axis[0] if axis[0] == axis[1] else f"{axis[0]}, {axis[1]}"
