"""A capture's records: the tensors it holds, and outputs it computes again from them when first read.

Holding every output of a pass means writing it all to fresh memory, most of the cost of a
capture over a plain forward. Some outputs are an exact function of a tensor the capture
holds anyway, so it keeps the recipe instead (:class:`Derived`) and computes the value when
a view first reads it, with the very call the module's forward made, so bit for bit the same:

- a parameter-free, piecewise-linear activation (:data:`DERIVED_TYPES`): of its input;
- a batch norm in eval mode (``nn.BatchNorm2d``, or timm's ``BatchNormAct2d`` with its ``drop``
  and ``act`` children): of its input, which is the convolution's output the capture holds.

:class:`Records` is the read-only mapping (record name → tensor) a capture exposes;
:class:`PassRecord` is what one capturing pass fills (:class:`~convviz.core.capture.activations.Capturer`).
"""
from __future__ import annotations

import operator
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

#: Activations derived from their input: parameter-free and piecewise linear, so exact. Each gives the
#: out-of-place call its module's forward makes.
DERIVED_TYPES: dict[type, Callable[[nn.Module], Callable]] = {
    nn.ReLU: lambda m: torch.relu,
    nn.ReLU6: lambda m: partial(F.hardtanh, min_val=m.min_val, max_val=m.max_val),
    nn.Hardtanh: lambda m: partial(F.hardtanh, min_val=m.min_val, max_val=m.max_val),
    nn.LeakyReLU: lambda m: partial(F.leaky_relu, negative_slope=m.negative_slope),
}


_VERSION = operator.attrgetter("_version")


class Derived:
    """An output not held: ``fn(source)``, computed on first read and kept.

    ``guard``: tensors ``fn`` reads besides ``source`` (batch-norm statistics) and the sum of their
    versions when the pass ran; reading the value after one of them changed in place raises.
    """

    __slots__ = ("fn", "source", "value", "guard", "version")

    def __init__(self, fn: Callable, source, guard: tuple = (), version: int = 0):
        self.fn, self.source, self.value, self.guard, self.version = fn, source, None, guard, version

    def tensor(self) -> torch.Tensor:
        """The value (computed on the first call)."""
        if self.value is None:
            if self.guard and sum(map(_VERSION, self.guard)) != self.version:
                raise RuntimeError("the model's batch-norm statistics changed after this capture: capture again")
            source = self.source.tensor() if type(self.source) is Derived else self.source
            with torch.no_grad():
                self.value = self.fn(source)
        return self.value


class Records(Mapping):
    """Record name → tensor (read-only); a :class:`Derived` entry is computed when first read."""

    __slots__ = ("_items",)

    def __init__(self, items: dict | None = None):
        self._items = {} if items is None else items

    def __getitem__(self, name: str) -> torch.Tensor:
        value = self._items[name]
        return value.tensor() if type(value) is Derived else value

    def __contains__(self, name) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self):
        return self._items.keys()

    def __repr__(self) -> str:
        return f"Records({list(self._items)})"


@dataclass
class Capture:
    """Outputs (and leaf inputs) of one forward pass; detached tensors that keep the batch (N, …)."""

    logits: torch.Tensor
    outputs: Mapping[str, torch.Tensor] = field(default_factory=dict)  #: :class:`Records` from a Capturer
    inputs: Mapping[str, torch.Tensor] = field(default_factory=dict)  #: for :data:`INPUT_TYPES` modules
    layers: tuple[str, ...] | None = None  #: the record names asked for; None: every module
    train: bool = False  #: whether the pass ran in training mode (dropout active)

    @property
    def batch_size(self) -> int:
        return int(self.logits.shape[0]) if self.logits.dim() > 1 else 1

    def names(self) -> list[str]:
        return list(self.outputs)

    def output(self, name: str) -> torch.Tensor:
        """The output of ``name`` for the whole batch (N, …)."""
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"no layer named {name!r} in this capture") from None

    def output_array(self, name: str, index: int = 0):
        """The output of ``name`` for batch item ``index`` as a float32 numpy array (plain data)."""
        return _item(self.output(name), index, name)


def _item(tensor: torch.Tensor, index: int, name: str):
    size = int(tensor.shape[0]) if tensor.dim() else 0
    if not -size <= index < size:
        raise IndexError(f"{name}: no batch item {index} (the batch holds {size})")
    return tensor[index].detach().float().cpu().numpy()


class NormPlan(NamedTuple):
    """How a batch norm's records are derived from its input (see :func:`norm_plan`)."""

    norm: Callable  #: input → the normalised values (before any activation)
    tensors: tuple  #: (running_mean, running_var, weight, bias) ``norm`` reads (None: absent)
    guard: tuple  #: those present: a change in place after the pass makes its records unreadable
    eps: float
    act: nn.Module | None  #: the activation applied after (None: the output is the normalised values)
    children: tuple  #: (drop, act) modules of a BatchNormAct2d, () for a plain batch norm
    drop_name: str | None = None
    act_name: str | None = None

    def current(self, module: nn.Module) -> bool:
        """True while ``module`` still normalises with the very tensors and epsilon of this plan."""
        return module.eps == self.eps and all(map(operator.is_, _norm_tensors(module), self.tensors))


def _is_timm_norm_act(module: nn.Module) -> bool:
    cls = type(module)
    return cls.__name__ == "BatchNormAct2d" and cls.__module__.startswith("timm.")


def _norm_tensors(module: nn.Module) -> tuple:
    """(running_mean, running_var, weight, bias) of a batch norm, as its forward reads them (None: absent)."""
    buffers, parameters = module._buffers, module._parameters
    return buffers.get("running_mean"), buffers.get("running_var"), parameters.get("weight"), parameters.get("bias")


def norm_plan(module: nn.Module, name: str) -> NormPlan | None:
    """The plan for a batch norm whose records a capture in eval mode may derive, else None.

    ``nn.BatchNorm2d`` (exactly) or timm's ``BatchNormAct2d`` whose ``drop`` is ``nn.Identity`` and
    whose ``act`` is ``nn.Identity`` or one of :data:`DERIVED_TYPES`, with running statistics.
    Whether the pass may use it (eval mode, no hooks of the caller's, the same tensors) is decided per pass.
    """
    timm_style = _is_timm_norm_act(module)
    if not (type(module) is nn.BatchNorm2d or timm_style):
        return None
    tensors = _norm_tensors(module)
    running_mean, running_var, weight, bias = tensors
    if running_mean is None or running_var is None:
        return None
    norm = partial(F.batch_norm, running_mean=running_mean, running_var=running_var, weight=weight, bias=bias,
                   training=False, momentum=0.0, eps=module.eps)
    guard = tuple(t for t in tensors if t is not None)
    if not timm_style:
        return NormPlan(norm, tensors, guard, module.eps, None, ())
    drop, act = getattr(module, "drop", None), getattr(module, "act", None)
    if type(drop) is not nn.Identity or not (type(act) is nn.Identity or type(act) in DERIVED_TYPES):
        return None
    return NormPlan(norm, tensors, guard, module.eps, None if type(act) is nn.Identity else act, (drop, act),
                    f"{name}.drop", f"{name}.act")


def plain_module(module: nn.Module) -> bool:
    """True when ``module`` runs its class's own forward with no hooks of anyone's."""
    return not (module._forward_hooks or module._forward_pre_hooks or "forward" in module.__dict__)


class PassRecord:
    """What one capturing pass records: outputs, inputs, and the tensors to check for in-place changes."""

    def __init__(self, clone: set[str], learning: bool):
        self.clone = clone
        self.outputs: dict[str, torch.Tensor | Derived] = {}
        self.inputs: dict[str, torch.Tensor | Derived] = {}
        self.held: list[tuple[str, torch.Tensor, int]] = []  #: (key, tensor, its version when recorded)
        self.calls: dict[nn.Module, int] = {}
        self.norms: dict[nn.Module, NormPlan] = {}  #: batch norms derived in this pass (none while learning)
        self.derive: set[nn.Module] | frozenset = frozenset()  #: activations derived in this pass
        self.links: dict[int, tuple] = {}  #: id(a derived output) → (weakref to it, its version, Derived)
        self.failed = False  #: a derived batch norm ran twice: its children's records are missing
        #: learning only: (name, version) that first produced each tensor, and outputs that were
        #: already another module's output (Identity, containers returning a child's result)
        self.producer: dict[int, tuple[str, int]] | None = {} if learning else None
        self.same_as: dict[str, str] = {}

    def linked(self, tensor: torch.Tensor) -> Derived | None:
        """The :class:`Derived` that stands for ``tensor``: a derived output, untouched since."""
        link = self.links.get(id(tensor))
        if link is not None and link[0]() is tensor and tensor._version == link[1]:
            return link[2]
        return None

    def keep(self, key: str, tensor: torch.Tensor, store: dict | None, name: str):
        """Record ``tensor`` as ``store[name]`` (version-checked as ``key``); returns what stands for it."""
        linked = self.linked(tensor) if self.links else None
        if linked is not None:
            if store is not None:
                store[name] = linked
            return linked
        kept = tensor.clone() if self.clone and key in self.clone else tensor
        if store is not None:
            store[name] = kept
        self.held.append((key, tensor, tensor._version))
        return kept

    def derived(self, name: str, out: torch.Tensor, value: Derived) -> None:
        """``name``'s output ``out`` is not held: ``value`` stands for it, here and wherever it is recorded again."""
        self.outputs[name] = value
        self.links[id(out)] = (weakref.ref(out), out._version, value)

    def derive_norm(self, plan: NormPlan, name: str, given: torch.Tensor, out: torch.Tensor) -> None:
        """A batch norm's records (and its drop's and act's) derived from its input ``given``."""
        source = self.keep("<" + name, given, None, name)
        normed = Derived(plan.norm, source, plan.guard, sum(map(_VERSION, plan.guard)))
        value = normed if plan.act is None else Derived(DERIVED_TYPES[type(plan.act)](plan.act), normed)
        self.derived(name, out, value)
        if plan.drop_name is not None:
            self.outputs[plan.drop_name] = normed
            self.outputs[plan.act_name] = value
            if plan.act is not None:
                self.inputs[plan.act_name] = normed

    def stale(self) -> set[str]:
        return {key for key, tensor, version in self.held if tensor._version != version}
