"""The layer table: every module's type, output shape, window settings and receptive field.

Built from one real forward pass (zeros, batch 1) traced by
:class:`~convviz.core.capture.receptive_field.FieldTracer`, so shapes are torch's own and
receptive fields follow the real graph (residual adds, Inception branches).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .activations import call_name, first_tensor
from ..geometry.padding import is_dynamic_same, padding_text, real_padding
from .receptive_field import FieldTracer, traced_pass


@dataclass(frozen=True)
class LayerRow:
    """One module call. ``rf``/``jump``/``start`` are (H, W) in input pixels; None if not spatial."""

    name: str
    type: str
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    #: the padding the layer really applies: (pH, pW) when symmetric, else (top, bottom, left, right)
    #: (TF "SAME" at stride 2, torch's ``'same'`` with an even kernel); see :mod:`.padding`
    padding: tuple[int, ...] | None = None
    dilation: tuple[int, int] | None = None
    groups: int | None = None
    rf: tuple[int, int] | None = None
    jump: tuple[int, int] | None = None
    start: tuple[float, float] | None = None
    params: int = 0
    same: str = ""  #: "tf" for a layer that pads TF "SAME" in its forward, "torch" for ``padding='same'``

    @property
    def pads(self) -> tuple[int, int, int, int] | None:
        """(top, bottom, left, right) padding; None for a layer without a window."""
        if self.padding is None:
            return None
        return self.padding if len(self.padding) == 4 else (self.padding[0], self.padding[0], self.padding[1], self.padding[1])

    @property
    def padding_text(self) -> str:
        """``1`` (symmetric), ``0/1`` (before/after) per axis; TF "SAME" named; "" without a window."""
        if self.pads is None:
            return ""
        text = padding_text(self.pads)
        return {"tf": f"TF same {text}", "torch": f"same {text}"}.get(self.same, text)

    def as_json(self) -> dict:
        """JSON form: ``rf``/``jump`` as integers (the larger axis), ``*_hw`` keep both axes."""
        row = asdict(self)
        for key in ("rf", "jump"):
            row[key + "_hw"] = row[key]
            row[key] = None if row[key] is None else int(max(row[key]))
        row["start"] = None if self.start is None else list(self.start)
        row["pads"], row["padding_text"] = None if self.pads is None else list(self.pads), self.padding_text
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


def window_settings(module: nn.Module, in_hw: tuple[int, int] | None = None) -> dict:
    """kernel / stride / real padding / dilation / groups of a conv or pooling module whose input
    is ``in_hw`` (H, W) (needed for TF "SAME", which depends on it)."""
    is_conv = isinstance(module, nn.modules.conv._ConvNd)
    if not (is_conv or isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d))):
        return {}
    pads = real_padding(module, in_hw)  # ValueError for TF "SAME" without in_hw
    padding = (pads[0], pads[2]) if pads[0] == pads[1] and pads[2] == pads[3] else pads
    same = "tf" if is_dynamic_same(module) else "torch" if getattr(module, "padding", 0) == "same" else ""
    settings = dict(kernel=_pair(module.kernel_size), stride=_pair(module.stride or module.kernel_size), padding=padding,
                    dilation=_pair(getattr(module, "dilation", 1)), same=same)
    return {**settings, "groups": int(module.groups)} if is_conv else settings


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
        source = first_tensor(args)
        calls[module] = calls.get(module, 0) + 1
        out = first_tensor(output)
        if out is None:
            return
        fields = tracer.field_of(out)
        spatial = fields is not None and out.dim() == 4
        own_params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(LayerRow(
            name=call_name(names[module], calls[module]), type=type(module).__name__,
            out_shape=tuple(out.shape[1:]),
            **window_settings(module, tuple(source.shape[-2:]) if source is not None and source.dim() == 4 else None),
            rf=tuple(_fit(f.size) for f in fields) if spatial else None,
            jump=tuple(_fit(f.jump) for f in fields) if spatial else None,
            start=tuple(float(f.start) for f in fields) if spatial else None,
            params=int(own_params),
        ))

    traced_pass(model, tracer, x, names, hook)
    return rows
