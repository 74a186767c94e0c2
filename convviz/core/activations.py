"""One forward pass → every module's output, by its ``named_modules()`` path.

One forward hook per module keeps references (no copies) to its output and, for
convolution, pooling, activation, dropout and linear modules, to its input — what the
stage views need (the pass runs under ``no_grad``: nothing to detach). A module called
several times (torchvision's ResNet reuses ``relu``) is recorded once per call:
``layer1.0.relu``, ``layer1.0.relu:2`` … A tensor that a later in-place op overwrites
(``out += identity``) is detected through its version counter; those names are then
cloned and the pass is run once more, so a capture never holds corrupted values.
In-place activation modules are switched to out-of-place once (identical results).
:class:`ActivationCache` keeps recent captures: changing the view never recomputes.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import nn


#: Modules whose input is recorded too (the layer's input, pre-activation, pre-pooling …).
INPUT_TYPES = (
    nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
    nn.Mish, nn.PReLU, nn.modules.dropout._DropoutNd, nn.Linear,
)


def call_name(name: str, call: int) -> str:
    """Record name of the ``call``-th (1-based) call of module ``name``."""
    return name if call == 1 else f"{name}:{call}"


def first_tensor(value):
    """The tensor a module returned (first tensor of a tuple / list / namedtuple)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


@dataclass
class Capture:
    """Outputs (and leaf inputs) of one forward pass; tensors are detached, batch 1."""

    logits: torch.Tensor
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)  #: for :data:`INPUT_TYPES` modules

    def names(self) -> list[str]:
        return list(self.outputs)

    def output(self, name: str) -> torch.Tensor:
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"no layer named {name!r} in this model") from None

    def output_array(self, name: str):
        """The output of ``name`` for image 0 as a float32 numpy array (plain data)."""
        return self.output(name)[0].detach().float().cpu().numpy()


class _Pass:
    """State of one capturing forward pass."""

    def __init__(self, clone: set[str], learning: bool):
        self.clone = clone
        self.outputs: dict[str, torch.Tensor] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        self.versions: dict[str, tuple[torch.Tensor, int]] = {}
        self.calls: dict[nn.Module, int] = {}
        #: learning only: which name first produced each tensor, and outputs that were
        #: already another module's output (Identity, containers returning a child's result)
        self.producer: dict[int, str] | None = {} if learning else None
        self.same_as: dict[str, str] = {}

    def keep(self, key: str, tensor: torch.Tensor, store: dict, name: str) -> None:
        store[name] = tensor.clone() if self.clone and key in self.clone else tensor
        self.versions[key] = (tensor, tensor._version)

    def stale(self) -> set[str]:
        return {key for key, (tensor, version) in self.versions.items() if tensor._version != version}


class Capturer:
    """Hooks a model for capture; remembers which outputs need cloning or are aliases.

    The hooks stay on the model (they return at once when no capture is running) so a
    capture pays no registration cost; :meth:`close` removes them. The first capture
    also learns which modules only hand on a tensor another module produced (``Identity``,
    a ``Sequential`` returning its last child's result); their hooks are then removed and
    their outputs filled in by reference after each pass. Not re-entrant: one capture at
    a time per model (the workers run model work on one thread).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.names = {module: name for name, module in model.named_modules() if name}
        self.with_inputs = {module for module in self.names if isinstance(module, INPUT_TYPES)}
        self.clone_names: set[str] = set()
        self.aliases: dict[str, str] = {}  #: name → the name whose output it always returns
        self._pass: _Pass | None = None
        # In-place activations would overwrite their own input (the pre-activation) before
        # the forward hook sees it; out-of-place gives identical results.
        for module in self.names:
            if getattr(module, "inplace", None) is True:
                module.inplace = False
        self._handles = {}
        self._hook_all()

    def _hook_all(self) -> None:
        for module in self.names:
            if module not in self._handles:
                self._handles[module] = module.register_forward_hook(self._hook)
        self.aliases = {}

    def close(self) -> None:
        """Remove the hooks from the model."""
        for handle in self._handles.values():
            handle.remove()
        self._handles = {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> Capture:
        """Run ``model(x)`` once, capturing every module's output."""
        learning = not self.aliases
        capture, record = self._run(x, learning)
        if record is None:  # the graph changed under the aliases: learn again
            self._hook_all()
            learning = True
            capture, record = self._run(x, learning)
        stale = record.stale()
        if stale - self.clone_names:
            self.clone_names |= stale
            capture, record = self._run(x, learning)
        if learning:
            self._learn(record)
        return capture

    def _learn(self, record: _Pass) -> None:
        """Unhook modules that only returned another module's tensor, untouched, in one call."""
        by_name = {name: module for module, name in self.names.items()}
        for name, source in record.same_as.items():
            module = by_name[name]
            if record.calls.get(module) == 1 and name not in self.clone_names and source not in self.clone_names:
                self.aliases[name] = source
                self._handles.pop(module).remove()

    def _run(self, x: torch.Tensor, learning: bool) -> tuple[Capture, _Pass | None]:
        self._pass = record = _Pass(self.clone_names, learning)
        try:
            logits = first_tensor(self.model(x))
        finally:
            self._pass = None
        outputs = record.outputs
        for name, source in self.aliases.items():
            if source not in outputs:
                return None, None
            outputs[name] = outputs[source]
        return Capture(logits=logits.detach(), outputs=outputs, inputs=record.inputs), record

    def _hook(self, module, args, output):
        record = self._pass
        if record is None:
            return
        count = record.calls[module] = record.calls.get(module, 0) + 1
        name = self.names[module] if count == 1 else f"{self.names[module]}:{count}"
        out = output if type(output) is torch.Tensor else first_tensor(output)
        if out is not None:  # inlined keep(): this runs once per module per pass
            record.outputs[name] = out.clone() if record.clone and name in record.clone else out
            record.versions[name] = (out, out._version)
            if record.producer is not None:
                source = record.producer.setdefault(id(out), name)
                if source != name and module not in self.with_inputs and record.versions[source][1] == out._version:
                    record.same_as[name] = source
        if module in self.with_inputs and args and isinstance(args[0], torch.Tensor):
            record.keep("<" + name, args[0], record.inputs, name)


class ActivationCache:
    """Captures keyed by (model, image); newest kept, oldest evicted (compute once, view many)."""

    def __init__(self, max_items: int = 2):
        self.max_items = max_items
        self._items: OrderedDict[tuple, Capture] = OrderedDict()
        self._capturers: dict[int, Capturer] = {}
        self.computed = 0

    def get(self, model: nn.Module, image_key, make_input) -> Capture:
        """The capture for (model, image_key); ``make_input()`` is called only on a miss."""
        key = (id(model), image_key)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        capturer = self._capturers.get(id(model))
        if capturer is None or capturer.model is not model:
            if capturer is not None:
                capturer.close()
            capturer = self._capturers[id(model)] = Capturer(model)
        capture = capturer(make_input())
        self.computed += 1
        self._items[key] = capture
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return capture

    def clear(self) -> None:
        """Forget all captures and unhook every model."""
        self._items.clear()
        for capturer in self._capturers.values():
            capturer.close()
        self._capturers.clear()


def predict_top(logits: torch.Tensor, labels, k: int = 5) -> list[dict]:
    """Top-``k`` softmax entries of a (1, N) logits tensor as ``{"label","index","prob"}``."""
    probs = torch.softmax(logits.float().reshape(-1), dim=0)
    values, indices = probs.topk(min(k, probs.numel()))
    return [
        {"label": labels[int(i)], "index": int(i), "prob": float(p)}
        for p, i in zip(values.tolist(), indices.tolist())
    ]
