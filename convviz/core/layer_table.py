"""The layer table: every module's type, output shape, window settings and receptive field.

Built from one real forward pass (zeros, batch 1) traced by
:class:`~convviz.core.receptive_field.FieldTracer`, so shapes are torch's own and
receptive fields follow the real graph (residual adds, Inception branches).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .activations import call_name, first_tensor
from .receptive_field import FieldTracer


@dataclass(frozen=True)
class LayerRow:
    """One module call. ``rf``/``jump``/``start`` are (H, W) in input pixels; None if not spatial."""

    name: str
    type: str
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | str | None = None
    dilation: tuple[int, int] | None = None
    groups: int | None = None
    rf: tuple[int, int] | None = None
    jump: tuple[int, int] | None = None
    start: tuple[float, float] | None = None
    params: int = 0

    def as_json(self) -> dict:
        """JSON form: ``rf``/``jump`` as integers (the larger axis), ``*_hw`` keep both axes."""
        row = asdict(self)
        for key in ("rf", "jump"):
            row[key + "_hw"] = row[key]
            row[key] = None if row[key] is None else int(max(row[key]))
        row["start"] = None if self.start is None else list(self.start)
        for key in ("out_shape", "kernel", "stride", "dilation", "rf_hw", "jump_hw"):
            if isinstance(row[key], tuple):
                row[key] = list(row[key])
        if isinstance(row["padding"], tuple):
            row["padding"] = list(row["padding"])
        return row


def _pair(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def window_settings(module: nn.Module) -> dict:
    """kernel / stride / padding / dilation / groups of a conv or pooling module."""
    if isinstance(module, nn.modules.conv._ConvNd):
        padding = module.padding if isinstance(module.padding, str) else _pair(module.padding)
        return dict(kernel=_pair(module.kernel_size), stride=_pair(module.stride), padding=padding,
                    dilation=_pair(module.dilation), groups=int(module.groups))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)):
        return dict(kernel=_pair(module.kernel_size), stride=_pair(module.stride or module.kernel_size),
                    padding=_pair(getattr(module, "padding", 0)), dilation=_pair(getattr(module, "dilation", 1)))
    return {}


def _fit(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 3)


@torch.no_grad()
def layer_table(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224)) -> list[LayerRow]:
    """Rows for every module call of ``model`` on a zero input of ``input_shape`` (C, H, W)."""
    names = {module: name for name, module in model.named_modules() if name}
    x = torch.zeros((1, *input_shape))
    tracer = FieldTracer(x)
    rows: list[LayerRow] = []
    calls: dict[nn.Module, int] = {}

    def hook(module, args, output):
        calls[module] = calls.get(module, 0) + 1
        out = first_tensor(output)
        if out is None:
            return
        fields = tracer.field_of(out)
        spatial = fields is not None and out.dim() == 4
        own_params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(LayerRow(
            name=call_name(names[module], calls[module]), type=type(module).__name__,
            out_shape=tuple(out.shape[1:]), **window_settings(module),
            rf=tuple(_fit(f.size) for f in fields) if spatial else None,
            jump=tuple(_fit(f.jump) for f in fields) if spatial else None,
            start=tuple(float(f.start) for f in fields) if spatial else None,
            params=int(own_params),
        ))

    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    model.eval()
    try:
        with tracer:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows
