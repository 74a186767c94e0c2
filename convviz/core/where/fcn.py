"""The classifier made fully convolutional: find its head and turn it into 1×1 convolutions.

A head that reads ``linear(concat(GAP(M₁), GAP(M₂), …))`` (one or more feature maps, global
average pooled, then one linear layer: ResNet, EfficientNet, a convviz multi-layer head) equals
the spatial mean of ``Σ_k W_k · M_k(i, j) + b`` — a 1×1 convolution per map, summed. The maps
and the linear layer are found by running the model once on a fixed random input and checking,
number by number, that the linear layer's input is those pooled maps (ReLU'd first, as DenseNet
does, is recognised too) and that the model's output is that layer's output. Anything else
(VGG's three linear layers, MobileNetV3's hidden layer) has no linear head to convert.

A convviz head that also reads a map's log standard deviation (``core.model.taps``,
``pool="mean+logstd"``) is converted too: that statistic belongs to the whole map, not to any
window, so its share of the score is the same at every position (and the mean over positions is
still the model's output).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..capture.activations import call_name, first_tensor
from ..capture.receptive_field import FieldTracer
from ..model.taps import pooled
from .frame import Grid, remember_grid
from .layer_tap import find_module, on_call


@dataclass(frozen=True)
class Head:
    """What the dense pass needs: ``maps[k]`` (a record name), pooled as ``kinds[k]``, feeds columns
    ``cols[k]`` of ``linear``."""

    maps: tuple[str, ...]  #: record names; the first is the last (coarsest) feature map
    #: "mean" (global average), "relu-mean" (of the map's ReLU) or "logstd" (its log standard deviation)
    kinds: tuple[str, ...]
    cols: tuple[tuple[int, int], ...]
    linear: str
    classes: int


_HEADS: "weakref.WeakKeyDictionary[nn.Module, Head | str]" = weakref.WeakKeyDictionary()


def no_head(title: str, why: str) -> str:
    return (f"{title}: {why}, so it has no linear head to turn into a 1×1 convolution "
            "(the dense method needs global average pooling then one linear layer; crop-and-classify works with any classifier)")


@torch.no_grad()
def find_head(model: nn.Module, input_size: int, title: str = "this model") -> Head:
    """The :class:`Head` of ``model`` (cached per model); ValueError with one sentence when there is none."""
    known = _HEADS.get(model)
    if isinstance(known, Head):
        return known
    if isinstance(known, str):
        raise ValueError(known)
    try:
        head = _search(model, input_size, title)
    except ValueError as exc:
        _HEADS[model] = str(exc)
        raise
    _HEADS[model] = head
    return head


def _search(model: nn.Module, input_size: int, title: str) -> Head:
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError(no_head(title, "TorchScript runs its layers outside Python"))
    names = {module: name for name, module in model.named_modules() if name}
    maps: list = []
    linears: list[tuple[str, nn.Linear, torch.Tensor, torch.Tensor]] = []
    calls: dict[nn.Module, int] = {}

    def hook(module, args, output):
        calls[module] = calls.get(module, 0) + 1
        name = call_name(names[module], calls[module])
        if isinstance(module, nn.Linear) and isinstance(output, torch.Tensor):
            linears.append((name, module, first_tensor(args), output))
        elif isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-1] * output.shape[-2] > 1:
            maps.append((name, output, output._version))

    gen = torch.Generator().manual_seed(0)
    x = torch.randn((1, 3, input_size, input_size), generator=gen)
    tracer = FieldTracer(x)  # the same pass gives the feature map's grid at the native size
    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    model.eval()
    try:
        with tracer:
            out = first_tensor(model(x))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    maps = [(name, tensor) for name, tensor, version in maps if tensor._version == version]  # not changed in place
    if not linears or out is None or out.dim() != 2 or not torch.equal(linears[-1][3], out):
        raise ValueError(no_head(title, "its output is not a linear layer's"))
    lin_name, linear, lin_in, _ = linears[-1]
    if lin_in is None or lin_in.dim() != 2:
        raise ValueError(no_head(title, "its last linear layer does not read a flat vector"))
    found, offset = [], 0
    while offset < lin_in.shape[1]:
        match = _match(maps, lin_in[0, offset:], {_slot(name, kind) for name, kind, _ in found})
        if match is None:
            raise ValueError(no_head(title, f"the input of {lin_name} is not the global average pool of a feature map"))
        name, kind, channels = match
        if not found and kind == "logstd":  # the first map gives the grid of positions: it must be pooled per window
            raise ValueError(no_head(title, f"the input of {lin_name} starts with a whole-map statistic"))
        found.append((name, kind, (offset, offset + channels)))
        offset += channels
    first = dict(maps)[found[0][0]]
    fields = tracer.field_of(first)
    if fields is not None:
        grid = Grid(tuple(first.shape[-2:]), *(tuple(getattr(f, a) for f in fields) for a in ("size", "jump", "start")))
        remember_grid(model, found[0][0], (input_size, input_size), grid)
    return Head(tuple(f[0] for f in found), tuple(f[1] for f in found), tuple(f[2] for f in found), lin_name,
                int(linear.out_features))


_KINDS = {"mean": lambda t: t.mean((2, 3)), "relu-mean": lambda t: torch.relu(t).mean((2, 3)),
          "logstd": lambda t: pooled(t, "mean+logstd")[:, t.shape[1]:]}


def _slot(name: str, kind: str) -> tuple[str, str]:
    """What a map read as ``kind`` uses up: its average (plain or of its ReLU) or its log standard deviation."""
    return name, "logstd" if kind == "logstd" else "mean"


def _match(maps, rest: torch.Tensor, used: set[tuple[str, str]]):
    """The latest map whose global average (or that of its ReLU, or its log standard deviation), not yet
    read (``used``: :func:`_slot`), starts ``rest``: (name, kind, channels)."""
    for name, tensor in reversed(maps):
        channels = tensor.shape[1]
        if channels > rest.numel():
            continue
        for kind, pool in _KINDS.items():
            if _slot(name, kind) in used:
                continue
            stat = pool(tensor)[0]
            if torch.allclose(stat, rest[:channels], rtol=1e-4, atol=1e-5 * (1 + float(rest[:channels].abs().max()))):
                return name, kind, channels
    return None


def dense_logits(model: nn.Module, head: Head, x: torch.Tensor) -> torch.Tensor:
    """(N, classes, h, w) class scores at every position of ``head.maps[0]`` for input batch ``x``:
    ``Σ_k W_k · M_k + b`` (finer maps average-pooled onto the first map's grid). Their spatial
    mean is the model's own logits on ``x`` (exactly when the finer maps divide evenly)."""
    linear = dict(model.named_modules())[head.linear.split(":")[0]]
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name in dict.fromkeys(head.maps):
        module, call = find_module(model, name)
        handles.append(module.register_forward_hook(on_call(call, partial(seen.__setitem__, name))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    weight = linear.weight.detach()
    bias = None if linear.bias is None else linear.bias.detach().float()
    hw = tuple(seen[head.maps[0]].shape[-2:])
    total = None
    for name, kind, (lo, hi) in zip(head.maps, head.kinds, head.cols):
        if kind == "logstd":  # a whole-map statistic: the same share at every position
            total = total + (_KINDS[kind](seen[name].float()) @ weight[:, lo:hi].T.float())[:, :, None, None]
            continue
        fmap = torch.relu(seen[name]) if kind == "relu-mean" else seen[name]
        if tuple(fmap.shape[-2:]) != hw:
            fmap = F.adaptive_avg_pool2d(fmap, hw)
        part = F.conv2d(fmap.float(), weight[:, lo:hi, None, None].float(), bias if total is None else None)
        total = part if total is None else total + part
    return total
