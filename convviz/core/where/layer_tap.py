"""Run a model only as far as one layer, and find that layer's row in the layer table.

:func:`run_to` stops the forward pass right after the chosen module call returns (nothing later
runs, so nothing later can overwrite its output in place, and an early layer costs a fraction of
a full pass); autograd keeps the graph up to that output, so the effective-field code can
differentiate it. The model is left as it was (the one hook is removed in a ``finally``).
"""
from __future__ import annotations

import difflib

import torch
from torch import nn

from ..capture.activations import first_tensor, split_call_name
from ..capture.layer_table import layer_table


class _Reached(Exception):
    """Raised inside the forward pass once the wanted call has returned."""


def run_to(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of record ``layer`` (``blocks.2.1.conv_dw``, ``layer1.0.relu:2``) for batch ``x``."""
    module, call = find_module(model, layer)
    seen: list[torch.Tensor] = []

    def reached(output):
        out = first_tensor(output)
        if out is None:
            raise ValueError(f"{layer}: the layer returns no tensor")
        seen.append(out)
        raise _Reached

    handle = module.register_forward_hook(on_call(call, reached))
    try:
        model(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"{layer}: the layer does not run in this model's forward pass (an unused branch?)")
    return seen[0]


def on_call(call: int, action):
    """A forward hook that returns ``action(output)`` on its module's ``call``-th call (1-based) and
    leaves the other calls alone (a module may run more than once in a pass)."""
    calls = [0]

    def hook(_module, _args, output):
        calls[0] += 1
        return action(output) if calls[0] == call else None

    return hook


def find_module(model: nn.Module, layer: str) -> tuple[nn.Module, int]:
    """(module, 1-based call) of record name ``layer``; ValueError naming the closest layer."""
    base, call = split_call_name(layer)
    module = dict(model.named_modules()).get(base) if base else None
    if module is None:
        raise ValueError(no_layer(model, layer))
    return module, call


def no_layer(model: nn.Module, layer: str) -> str:
    """One line: ``model`` has no layer ``layer``, with the closest name when there is one."""
    names = [n for n, _ in model.named_modules() if n]
    close = difflib.get_close_matches(layer, names, n=1)
    return f"no layer named {layer!r} in this model" + (f"; did you mean {close[0]}?" if close else " (see `convviz layers`)")


def layer_row(model: nn.Module, layer: str, input_size: int, rows=()):
    """The :class:`~convviz.core.capture.layer_table.LayerRow` of record ``layer`` (from ``rows`` when given,
    else from the layer table of ``model`` at ``input_size``)."""
    for row in table_rows(model, input_size, rows):
        if row.name == layer:
            return row
    raise ValueError(no_layer(model, layer))


def table_rows(model: nn.Module, input_size: int, rows=()) -> tuple:
    """``rows`` when given, else the layer table of ``model`` at ``input_size``."""
    return tuple(rows) if rows else tuple(layer_table(model, (3, input_size, input_size)))


def spatial_row(row) -> bool:
    """True when the layer's output is a map (C, H, W) with a traced receptive field."""
    return len(row.out_shape) == 3 and row.rf is not None


def check_channel(channel: int, channels: int, layer: str) -> int:
    """``channel`` when it is one of the layer's, else a one-line ValueError."""
    if not 0 <= int(channel) < channels:
        raise ValueError(f"channel {channel} is out of range: {layer} has {channels} channels (0–{channels - 1})")
    return int(channel)
