"""Activation lab: what ReLU, ReLU6, SiLU and Hardswish do to a real map.

:func:`activation_lab` takes the values an activation received (its *pre-activation*) and
the values it produced, as captured in the forward pass, and returns the maps of one
channel, both histograms over shared bins, samples of ``f(x)`` and the measured share of
values set to exactly zero. For timm's fused ``BatchNormAct2d`` the pre-activation is
``BN(x)`` without the activation (:func:`batchnorm_act_preactivation`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .text import share_text

@dataclass(frozen=True)
class Shape:
    """Facts about f(x), checked against torch in ``tests/core/test_labs_activation.py``."""

    zero_upto: float | None = None  #: f(x) = 0 exactly for every x ≤ this (None: no such range)
    identity_from: float | None = None  #: f(x) = x exactly for x ≥ this (up to ``cap``)
    cap: float | None = None  #: f(x) = cap for every x ≥ cap
    lowest: tuple[float, float] | None = None  #: (x, f(x)) of the minimum, where f dips below 0
    kinks: tuple[float, ...] = ()  #: where the slope jumps (elsewhere f is smooth)

    def describe(self) -> str:
        """The facts as one clause list: ``0 for x ≤ −3, x for x ≥ 3, curved between …``."""
        parts = []
        if self.zero_upto is not None:
            parts.append(f"0 for x ≤ {_num(self.zero_upto)}")
        if self.identity_from is not None:
            lo = _num(self.identity_from)
            parts.append(f"x for {lo} ≤ x ≤ {_num(self.cap)}" if self.cap is not None else f"x for x ≥ {lo}")
        if self.cap is not None:
            parts.append(f"{_num(self.cap)} for x ≥ {_num(self.cap)}")
        if None not in (self.zero_upto, self.identity_from) and self.zero_upto < self.identity_from:
            parts.append(f"curved between {_num(self.zero_upto)} and {_num(self.identity_from)}")
        if self.lowest is not None:
            x, y = self.lowest
            lead = "negatives survive, down to" if self.zero_upto is None else "lowest value"
            parts.append(f"{lead} {_num(y)} at x = {_num(x)}")
        kinks = " and ".join(_num(k) for k in self.kinks)
        parts.append(f"{'a kink' if len(self.kinks) == 1 else 'kinks'} at x = {kinks}" if self.kinks else "smooth everywhere")
        return ", ".join(parts)


def _num(value: float) -> str:
    return f"{value:.3g}".replace("-", "−")


#: Activation type name → (torch function, formula, facts about its shape).
ACTIVATIONS = {
    "ReLU": (F.relu, "ReLU(x) = max(0, x)", Shape(zero_upto=0.0, identity_from=0.0, kinks=(0.0,))),
    "ReLU6": (F.relu6, "ReLU6(x) = min(max(0, x), 6)", Shape(zero_upto=0.0, identity_from=0.0, cap=6.0, kinks=(0.0, 6.0))),
    "SiLU": (F.silu, "SiLU(x) = x·sigmoid(x)", Shape(lowest=(-1.2785, -0.27846))),
    "Hardswish": (F.hardswish, "Hardswish(x) = x·ReLU6(x + 3)/6",
                  Shape(zero_upto=-3.0, identity_from=3.0, lowest=(-1.5, -0.375), kinks=(-3.0, 3.0))),
}
DIFFERENCES = "; ".join(f"{name}: {shape.describe()}" for name, (_, _, shape) in ACTIVATIONS.items()) + "."

CURVE_SAMPLES = 241


def activation_name(module: nn.Module) -> str | None:
    """The :data:`ACTIVATIONS` key of ``module`` (or of a BatchNormAct2d's ``act``), else None."""
    if is_batchnorm_act(module):
        module = module.act
    for name in ACTIVATIONS:
        if type(module) is getattr(nn, name):
            return name
    return None


def is_batchnorm_act(module: nn.Module) -> bool:
    """True for timm's fused BatchNorm + activation (``BatchNormAct2d``)."""
    return isinstance(module, nn.BatchNorm2d) and isinstance(getattr(module, "act", None), nn.Module)


@torch.no_grad()
def batchnorm_act_preactivation(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``BN(x)`` of a ``BatchNormAct2d`` in eval mode, without its activation (then its ``drop``)."""
    y = F.batch_norm(x, module.running_mean, module.running_var, module.weight, module.bias, False, 0.0,
                     module.eps)
    return module.drop(y) if isinstance(getattr(module, "drop", None), nn.Module) else y


@dataclass(frozen=True)
class ActivationLab:
    """One activation on real values. Maps are of ``channel``; shares are over the whole layer."""

    layer: str
    function: str  #: ``ReLU`` / ``ReLU6`` / ``SiLU`` / ``Hardswish``
    formula: str
    behaviour: str  #: the function's shape in words (:meth:`Shape.describe`)
    differences: str  #: one line: the four functions' shapes side by side
    source: str  #: where the pre-activation came from, in words
    channel: int
    shape: tuple[int, ...]  #: (C, H, W) of the layer
    input_map: np.ndarray  #: (H, W) pre-activation of ``channel``
    output_map: np.ndarray  #: (H, W) activation of ``channel``
    bin_edges: np.ndarray  #: shared by both histograms (bins + 1,)
    input_counts: np.ndarray  #: whole layer, per bin
    output_counts: np.ndarray
    curve_x: np.ndarray  #: f(x) samples over the input's range
    curve_y: np.ndarray
    zero_share: float  #: share of output values exactly 0 (whole layer)
    channel_zero_share: float
    negative_share: float  #: share of input values < 0 (whole layer)
    capped_share: float  #: ReLU6: share of outputs exactly 6 (else 0)
    max_abs_error: float  #: |f(input) − captured output|, max over the layer

    @property
    def summary(self) -> str:
        """``ReLU6 set 52.3% of the values to 0 (input: 55.0% negative)``."""
        text = (f"{self.function} set {share_text(self.zero_share)} of the values to 0 "
                f"(input: {share_text(self.negative_share)} negative)")
        if self.function == "ReLU6":
            text += f"; {share_text(self.capped_share)} capped at 6"
        return text


def activation_lab(layer: str, function: str, pre: torch.Tensor, out: torch.Tensor, channel: int = 0,
                   bins: int = 64, source: str = "") -> ActivationLab:
    """Lab data of activation ``function`` from its (C, H, W) input ``pre`` and output ``out``."""
    if function not in ACTIVATIONS:
        raise ValueError(f"{layer}: {function} is not one of {', '.join(ACTIVATIONS)}")
    pre, out = pre.detach().float(), out.detach().float()
    if pre.dim() == 1 and out.dim() == 1:  # a vector (after a Linear): one row of one channel
        pre, out = pre[None, None], out[None, None]
    if pre.shape != out.shape or pre.dim() != 3:
        raise ValueError(f"{layer}: expected (C, H, W) input and output of the same shape, got "
                         f"{tuple(pre.shape)} and {tuple(out.shape)}")
    channels = int(pre.shape[0])
    if not 0 <= int(channel) < channels:
        raise ValueError(f"{layer}: channel {channel} does not exist (0–{channels - 1})")
    if not 2 <= int(bins) <= 1000:
        raise ValueError(f"bins must be 2–1000 (got {bins})")
    fn, formula, shape = ACTIVATIONS[function]
    behaviour = f"{function}(x) is {shape.describe()}"
    x, y = pre.numpy(), out.numpy()
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, int(bins) + 1)
    curve_x = torch.linspace(float(x.min()), float(x.max()) if x.max() > x.min() else float(x.min()) + 1.0,
                             CURVE_SAMPLES)
    return ActivationLab(
        layer=layer, function=function, formula=formula, behaviour=behaviour, differences=DIFFERENCES,
        source=source, channel=int(channel), shape=tuple(int(n) for n in pre.shape),
        input_map=x[channel].copy(), output_map=y[channel].copy(), bin_edges=edges,
        input_counts=np.histogram(x, edges)[0], output_counts=np.histogram(y, edges)[0],
        curve_x=curve_x.numpy(), curve_y=fn(curve_x).numpy(),
        zero_share=float((out == 0).float().mean()), channel_zero_share=float((out[channel] == 0).float().mean()),
        negative_share=float((pre < 0).float().mean()),
        capped_share=float((out == 6).float().mean()) if function == "ReLU6" else 0.0,
        max_abs_error=float((fn(pre) - out).abs().max()),
    )


def capture_activation_lab(capture, name: str, module: nn.Module, channel: int = 0, bins: int = 64) -> ActivationLab:
    """:func:`activation_lab` of module ``name`` from a :class:`~convviz.core.capture.activations.Capture`.

    For a ``BatchNormAct2d`` the pre-activation is what its ``act`` child received (the
    capture records it), or ``BN(x)`` of the module's own input when that was recorded.
    """
    function = activation_name(module)
    if function is None:
        raise ValueError(f"{name}: {type(module).__name__} is not an activation the lab knows "
                         f"({', '.join(ACTIVATIONS)}, or a BatchNormAct2d with one of them)")
    out = capture.output(name)[0]
    if is_batchnorm_act(module):
        base, _, call = name.partition(":")
        act_name = f"{base}.act" + (f":{call}" if call else "")
        if act_name in capture.inputs:
            pre = capture.inputs[act_name][0]
            source = f"pre-activation = BN(x) of {name}, before its {function} (the input of {act_name})"
        elif name in capture.inputs:
            pre = batchnorm_act_preactivation(module, capture.inputs[name])[0]
            source = f"pre-activation = BN(x) of {name}, before its {function}"
        else:
            raise ValueError(f"{name}: the input of its activation was not recorded")
    else:
        if name not in capture.inputs:
            raise ValueError(f"{name}: its input was not recorded")
        pre = capture.inputs[name][0]
        source = f"input of {name}"
    return activation_lab(name, function, pre, out, channel, bins, source)
