"""Receptive fields traced through the real forward pass (multi-branch nets included).

A :class:`torch.overrides.TorchFunctionMode` sees every op of one forward pass and gives
each 4-D tensor a :class:`Field` per spatial axis: ``size`` (pixels of input one unit
sees), ``jump`` (input pixels between neighbouring units) and ``start`` (input coordinate
of the centre of unit 0; pixel ``i`` has centre ``i``). Convolutions and poolings update
it (``size += (k-1)·d·jump``, ``start += ((k-1)·d/2 − p)·jump``, ``jump *= s``); element-wise
ops with several inputs (residual ``+``, Inception's ``cat``) take the union. Broadcast
1×1 gates (squeeze-excitation) are not counted, so the field stays local; flatten,
global pooling and linear layers see the whole input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class Field:
    """Receptive field along one axis, in input pixels."""

    size: float
    jump: float
    start: float

    def span(self, index: int) -> tuple[float, float]:
        """First and last input pixel seen by unit ``index`` (unclipped)."""
        centre = self.start + index * self.jump
        return centre - (self.size - 1) / 2, centre + (self.size - 1) / 2

    def after(self, kernel: int, stride: int, padding: float, dilation: int = 1) -> "Field":
        """The field after a sliding window with these settings."""
        return Field(
            self.size + (kernel - 1) * dilation * self.jump,
            self.jump * stride,
            self.start + ((kernel - 1) * dilation / 2 - padding) * self.jump,
        )


IDENTITY = Field(1.0, 1.0, 0.0)
_CONV = {"conv2d", "convolution", "_convolution"}
_POOL = {"max_pool2d", "avg_pool2d", "max_pool2d_with_indices", "_max_pool2d", "lp_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}


def _pair(value, default=None) -> tuple:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        value = default
    if isinstance(value, (list, tuple)):
        return tuple(value) if len(value) == 2 else (value[0], value[0])
    return (value, value)


def _arg(args, kwargs, index: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


class FieldTracer(TorchFunctionMode):
    """Assigns (H, W) :class:`Field` pairs to the tensors of one forward pass."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.image_hw = tuple(image.shape[-2:])
        self.fields: dict[int, tuple[torch.Tensor, tuple[Field, Field] | None]] = {id(image): (image, (IDENTITY, IDENTITY))}

    def field_of(self, tensor) -> tuple[Field, Field] | None:
        """The fields of ``tensor`` (None: no spatial field, e.g. a weight)."""
        entry = self.fields.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is tensor else None

    def whole_image(self) -> tuple[Field, Field]:
        """A field covering the whole input image (after flatten / global pooling)."""
        return tuple(Field(float(n), float(n), (n - 1) / 2) for n in self.image_hw)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tracked = [(t, f) for t in tree_flatten((args, kwargs))[0] if (f := self.field_of(t)) is not None]
        if not tracked:
            return out
        field = self._output_field(getattr(func, "__name__", ""), args, kwargs, tracked, out)
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                self.fields[id(tensor)] = (tensor, field if tensor.dim() == 4 else self.whole_image())
        return out

    def _output_field(self, name, args, kwargs, tracked, out):
        source, (fh, fw) = tracked[0]
        if name in _CONV:
            weight = args[1]
            kernel = tuple(weight.shape[-2:])
            stride = _pair(_arg(args, kwargs, 3, "stride", 1))
            dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
            padding = _arg(args, kwargs, 4, "padding", 0)
            if padding == "valid":
                padding = 0
            if padding == "same":
                padding = tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))
            padding = _pair(padding)
            return tuple(f.after(k, s, p, d) for f, k, s, p, d in zip((fh, fw), kernel, stride, padding, dilation))
        if name in _POOL:
            offset = 1 if name == "lp_pool2d" else 0  # lp_pool2d(input, norm_type, kernel_size, …)
            kernel = _pair(_arg(args, kwargs, 1 + offset, "kernel_size"))
            stride = _pair(_arg(args, kwargs, 2 + offset, "stride"), kernel)
            padding = _pair(0 if offset else _arg(args, kwargs, 3, "padding", 0))
            dilation = _pair(_arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1)
            return tuple(f.after(k, s, p, d) for f, k, s, p, d in zip((fh, fw), kernel, stride, padding, dilation))
        if name in _ADAPTIVE:
            out_t = out[0] if isinstance(out, tuple) else out
            fields = []
            for f, n, o in zip((fh, fw), source.shape[-2:], out_t.shape[-2:]):
                kernel = math.ceil(n / o)
                fields.append(f.after(kernel, n // o if n % o == 0 else 1, 0) if o > 1 else f.after(n, 1, 0))
            return tuple(fields)
        if name == "pad":
            pad = list(_arg(args, kwargs, 1, "pad")) + [0, 0, 0, 0]
            return (Field(fh.size, fh.jump, fh.start - pad[2] * fh.jump), Field(fw.size, fw.jump, fw.start - pad[0] * fw.jump))
        return self._union(tracked, out)

    def _union(self, tracked, out):
        out_t = tree_flatten(out)[0][0] if not isinstance(out, torch.Tensor) else out
        hw = tuple(out_t.shape[-2:]) if isinstance(out_t, torch.Tensor) and out_t.dim() == 4 else None
        same = [f for t, f in tracked if t.dim() == 4 and tuple(t.shape[-2:]) == hw]
        if not same:
            return self.whole_image() if hw is None or hw == (1, 1) else tracked[0][1]
        fields = []
        for axis in (0, 1):
            spans = [(f[axis].span(0), f[axis].jump) for f in same]
            lo = min(s[0] for s, _ in spans)
            hi = max(s[1] for s, _ in spans)
            fields.append(Field(hi - lo + 1, max(j for _, j in spans), (lo + hi) / 2))
        return tuple(fields)


def traced_pass(model, tracer: FieldTracer, x: torch.Tensor, modules, hook) -> None:
    """Run ``model`` on ``x`` once under ``tracer``, in eval mode (restored after), with the forward
    ``hook`` on each of ``modules`` for that pass only."""
    handles = [m.register_forward_hook(hook) for m in modules]
    was_training = model.training
    model.eval()
    try:
        with tracer:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
