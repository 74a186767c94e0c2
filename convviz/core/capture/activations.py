"""One forward pass → every (or the chosen) module's output, by its ``named_modules()`` path.

:class:`Capturer` runs ``model(x)`` on a batch of any size and keeps references (no
copies) to each hooked module's output and, for convolution, pooling, activation,
dropout and linear modules, to its input — what the stage views need (the pass runs
under ``no_grad``). A module called several times (torchvision's ResNet reuses ``relu``)
is recorded once per call: ``layer1.0.relu``, ``layer1.0.relu:2`` … A tensor that a later
in-place op overwrites (``out += identity``) is detected through its version counter;
those names are then cloned and the pass is run once more, so a capture never holds
corrupted values. A full capture in eval mode does not hold what it can compute again
exactly from what it holds: the outputs of batch norms and of piecewise-linear activations
are :class:`~convviz.core.capture.records.Derived` from their inputs when first read (bit for bit
the pass's values), so the pass writes far less fresh memory and a timm ``BatchNormAct2d``
keeps its in-place activation.

**The caller's model is left untouched.** Everything a capture needs — forward hooks,
in-place activations switched to out-of-place (identical results), the train/eval mode,
and in train mode the buffers batch norm updates and the random state — is set for the
duration of one call and restored in a ``finally``, even when the forward raises. Between
calls the model has no hook of ours and its flags are the caller's, so it can be copied,
saved or trained at any time. ``close()`` (or leaving a ``with`` block) ends the
capturer's use; it has nothing left to undo on the model. The cache of recent captures is
:class:`~convviz.core.capture.cache.ActivationCache`, built on this module.
"""
from __future__ import annotations

import operator
from contextlib import contextmanager
from typing import Callable, Iterable

import torch
from torch import nn

from .records import (  # noqa: F401  (Capture and Records are part of this module's interface)
    DERIVED_TYPES, Capture, Derived, NormPlan, PassRecord, Records, norm_plan, plain_module,
)

#: Modules whose input is recorded too (the layer's input, pre-activation, pre-pooling …).
INPUT_TYPES = (
    nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
    nn.Mish, nn.PReLU, nn.modules.dropout._DropoutNd, nn.Linear,
)

_ABSENT = object()
_TRAINING = operator.attrgetter("training")


def call_name(name: str, call: int) -> str:
    """Record name of the ``call``-th (1-based) call of module ``name``."""
    return name if call == 1 else f"{name}:{call}"


def split_call_name(record: str) -> tuple[str, int]:
    """(module path, 1-based call) of a record name: ``"layer1.0.relu:2"`` → ``("layer1.0.relu", 2)``."""
    base, sep, call = record.rpartition(":")
    if sep and call.isdigit() and int(call) >= 1 and base:
        return base, int(call)
    return record, 1


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


def _recording_forward(module: nn.Module, forward, record):
    """``forward`` followed by ``record(module, args, output)``: what a module runs during a pass.

    Wrapping ``forward`` (an instance attribute for the pass, as accelerate's hooks do)
    keeps ``Module.__call__`` on its fast path; a forward hook would send every call
    through the slow path, several times the cost of this wrapper.
    """

    def forward_and_record(*args, **kwargs):
        output = forward(*args, **kwargs)
        record(module, args, output)
        return output

    return forward_and_record


class Capturer:
    """Captures ``model(x)``: every module (``layers=None``) or only the named record names.

    ``layers`` — an iterable of record names (``"blocks.2.1.conv_dw"``, ``"layer1.0.relu:2"``):
    only those modules are hooked, only those calls recorded (with their inputs for
    :data:`INPUT_TYPES`), so a one-layer capture costs about a plain forward. An unknown
    module raises ``ValueError``. ``train`` — run the pass in training mode (dropout active,
    batch norm on batch statistics); the caller's per-module modes, batch-norm running
    statistics and in-place flags are restored after every call (see the module docstring).

    With ``layers=None`` the first capture also learns which modules only hand on a tensor
    another module produced (``Identity``, a ``Sequential`` returning its last child's
    result); they are not hooked afterwards and their outputs are filled in by reference.
    Later eval-mode captures derive batch-norm and activation outputs (see the module
    docstring): on Lite0 at 224×224 they hold ~27 MB instead of ~80 MB per image.
    Not re-entrant and not thread-safe: one capture at a time per model.
    """

    def __init__(self, model: nn.Module, layers: Iterable[str] | None = None, train: bool = False):
        self.model = model
        self.train = bool(train)
        self.names = {module: name for name, module in model.named_modules() if name}
        self.with_inputs = {module for module in self.names if isinstance(module, INPUT_TYPES)}
        self.clone_names: set[str] = set()
        self.aliases: dict[str, str] = {}  #: name → the name whose output it always returns
        self.layers: tuple[str, ...] | None = None if layers is None else self._resolve(layers)
        if isinstance(model, torch.jit.ScriptModule) and self.layers != ():
            raise ValueError("a TorchScript model runs its layers outside Python: they cannot be captured")
        self._modules = list(model.modules())
        self._info = {module: (name, module in self.with_inputs) for module, name in self.names.items()}
        self._pass: PassRecord | None = None
        self._wrappers: dict[nn.Module, Callable] = {}  #: recording forwards, built once per module
        self._closed = False
        if self.layers is None:
            self._hooked = list(self.names)
            self._switchable = [m for m in self.names if "inplace" in m.__dict__]
        else:
            self._hooked = list(self._wanted)
            self._switchable = [m for m in self._wanted if "inplace" in m.__dict__]
        derive = self.layers is None and not self.train  # eval-mode full captures derive (module docstring)
        self._derivable = frozenset(m for m in self.names if derive and type(m) in DERIVED_TYPES)
        plans = ((m, norm_plan(m, name)) for m, name in self.names.items() if derive)
        self._norm_plans: dict[nn.Module, NormPlan] = {m: plan for m, plan in plans if plan is not None}
        self._steady: tuple[list, list] | None = None  #: (hooked, switched) of a deriving pass

    def _resolve(self, layers: Iterable[str]) -> tuple[str, ...]:
        if isinstance(layers, str):
            layers = (layers,)
        by_name = {name: module for module, name in self.names.items()}
        self._wanted: dict[nn.Module, frozenset[int]] = {}
        asked = tuple(dict.fromkeys(layers))
        for record in asked:
            base, call = split_call_name(str(record))
            module = by_name.get(base)
            if module is None:
                raise ValueError(f"no layer named {record!r} in this model")
            self._wanted[module] = self._wanted.get(module, frozenset()) | {call}
        return asked

    def close(self) -> None:
        """End this capturer's use (idempotent); the model already holds nothing of it."""
        self._closed = True

    def __enter__(self) -> "Capturer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> Capture:
        """Run ``model(x)`` once (``x``: a batch (N, C, H, W)), recording the chosen modules."""
        if self._closed:
            raise RuntimeError("this Capturer is closed")
        if self._pass is not None:
            raise RuntimeError("a capture is already running on this Capturer")
        with self._borrowed(x) as replay:
            learning = self.layers is None and not self.aliases
            capture, record = self._run(x, learning)
            if record is not None and record.failed:  # a derived batch norm is called twice: hold its records
                self._norm_plans, self._steady = {}, None
                replay()
                capture, record = self._run(x, learning)
            if record is None:  # the graph changed under the aliases: learn again
                self.aliases, self._hooked, learning = {}, list(self.names), True
                replay()
                capture, record = self._run(x, learning)
            stale = record.stale()
            if stale - self.clone_names:
                self.clone_names |= stale
                replay()
                capture, record = self._run(x, learning)
        if learning:
            self._learn(record)
        return capture

    @contextmanager
    def _borrowed(self, x: torch.Tensor):
        """Put the model in capture state; yield ``replay`` (same random draws, same buffers); restore."""
        modes = None
        if (not self.train) in map(_TRAINING, self._modules):
            modes = [(m, m.training) for m in self._modules]
        saved_buffers, rng = [], None
        try:
            if modes is not None:
                self.model.train(self.train)
            if self.train:
                saved_buffers = [(b, b.clone()) for b in self.model.buffers()]
                rng = (torch.get_rng_state(), torch.cuda.get_rng_state(x.device) if x.is_cuda else None)

            def replay() -> None:
                for buffer, value in saved_buffers:
                    buffer.copy_(value)
                if rng is not None:
                    torch.set_rng_state(rng[0])
                    if rng[1] is not None:
                        torch.cuda.set_rng_state(rng[1], x.device)

            yield replay
        finally:
            for buffer, value in saved_buffers:
                buffer.copy_(value)
            if modes is not None:
                for module, mode in modes:
                    module.training = mode

    def _learn(self, record: PassRecord) -> None:
        """Stop hooking modules that only returned another module's tensor, untouched, in one call."""
        by_name = {name: module for module, name in self.names.items()}
        for name, source in record.same_as.items():
            module = by_name[name]
            if record.calls.get(module) == 1 and name not in self.clone_names and source not in self.clone_names:
                self.aliases[name] = source
        skipped = {by_name[name] for name in self.aliases}
        self._hooked = [m for m in self.names if m not in skipped]
        self._norm_plans = {module: plan for module, plan in self._norm_plans.items()  # each called once
                            if all(record.calls.get(m) == 1 for m in (module, *plan.children))}
        self._steady = None

    def _steady_plan(self) -> tuple[list, list]:
        """(modules to hook, in-place activations to switch off) in a pass that derives: a derived batch
        norm is hooked itself, its children are not (their records come from its) nor switched."""
        if self._steady is None:
            children = {child for plan in self._norm_plans.values() for child in plan.children}
            hooked = [m for m in self._hooked if m not in children]
            present = set(hooked)
            hooked += [m for m in self._norm_plans if m not in present]
            self._steady = hooked, [m for m in self._switchable if m not in children]
        return self._steady

    def _watch(self, hooked: list, record: PassRecord | None = None) -> list | None:
        """Make every hooked module record its calls; returns what :meth:`_unwatch` undoes.

        With ``record`` (a deriving pass) the batch norms and activations with no hooks or forward
        of anyone else's are derived; None (all undone) if a batch norm or its child has some.
        """
        hook = self._hook if self.layers is None else self._hook_chosen
        norms, derivable, held = self._norm_plans, self._derivable, []
        undo = []
        for module in hooked:
            own = module.__dict__
            if module._forward_hooks or module._forward_pre_hooks:
                # hooks of its own may change what it returns: record after them, as its caller sees it
                undo.append((None, module.register_forward_hook(hook)))
            elif "forward" in own:
                undo.append((own, own["forward"]))
                own["forward"] = _recording_forward(module, own["forward"], hook)
            else:
                wrapper = self._wrappers.get(module)
                if wrapper is None:
                    wrapper = self._wrappers[module] = _recording_forward(module, module.forward, hook)
                undo.append((own, _ABSENT))
                own["forward"] = wrapper
                if record is None or module not in norms or self._norm_ready(module):
                    continue
            if record is not None and module in norms:
                self._unwatch(undo)
                return None
            if record is not None and module in derivable:
                held.append(module)
        if record is not None:
            record.norms = norms
            record.derive = derivable.difference(held) if held else derivable
        return undo

    def _norm_ready(self, module: nn.Module) -> bool:
        """Whether ``module``'s records may be derived this pass: no hooks of anyone's on its children, and
        its plan still current (a replaced parameter or buffer renews the plan for the next pass)."""
        plan = self._norm_plans[module]
        if not plan.current(module):
            plan = norm_plan(module, self.names[module])
            self._norm_plans[module], self._steady = plan, None
            if plan is None:
                del self._norm_plans[module]
            return False
        return all(map(plain_module, plan.children))

    @staticmethod
    def _unwatch(undo: list) -> None:
        for own, previous in reversed(undo):
            if own is None:
                previous.remove()
            elif previous is _ABSENT:
                own.pop("forward", None)
            else:
                own["forward"] = previous

    def _run(self, x: torch.Tensor, learning: bool) -> tuple[Capture, PassRecord | None]:
        self._pass = record = PassRecord(self.clone_names, learning)
        undo, switched = None, []
        try:
            if not learning and (self._norm_plans or self._derivable):
                hooked, switchable = self._steady_plan()
                undo = self._watch(hooked, record)
            if undo is None:  # learning, nothing to derive, or a caller's hook in the way: hold everything
                undo, switchable = self._watch(self._hooked), self._switchable
            switched = [m for m in switchable if m.__dict__["inplace"] is True]
            for module in switched:  # an in-place activation overwrites its input before the hook
                module.__dict__["inplace"] = False  # a plain attribute: skip Module.__setattr__
            logits = first_tensor(self.model(x))
        finally:
            self._pass = None
            self._unwatch(undo or [])
            for module in switched:
                module.__dict__["inplace"] = True
        if logits is None:
            raise ValueError("the model returned no tensor")
        outputs = record.outputs
        for name, source in self.aliases.items():
            if source not in outputs:
                return None, None
            outputs[name] = outputs[source]
        capture = Capture(logits.detach(), Records(outputs), Records(record.inputs), self.layers, self.train)
        return capture, record

    def _hook(self, module, args, output):
        record = self._pass
        if record is None:
            return
        name, with_input = self._info[module]
        count = record.calls[module] = record.calls.get(module, 0) + 1
        if count != 1:
            name = f"{name}:{count}"
        out = output if type(output) is torch.Tensor else first_tensor(output)
        given = args[0] if args and isinstance(args[0], torch.Tensor) else None
        plan = record.norms.get(module) if record.norms else None
        if plan is not None:
            if count != 1 or out is None or given is None:
                record.failed = True  # its children's records (not hooked) would be missing
            else:
                record.derive_norm(plan, name, given, out)
            return
        if with_input and given is not None:
            given = record.keep("<" + name, given, record.inputs, name)
            if out is not None and module in record.derive and out is not args[0]:
                record.derived(name, out, Derived(DERIVED_TYPES[type(module)](module), given))
                return
        if out is None:
            return
        linked = record.linked(out) if record.links else None
        if linked is not None:  # this module handed on a derived output
            record.outputs[name] = linked
            return
        record.outputs[name] = out.clone() if record.clone and name in record.clone else out
        record.held.append((name, out, out._version))
        if record.producer is not None:
            source, version = record.producer.setdefault(id(out), (name, out._version))
            if source != name and not with_input and version == out._version:
                record.same_as[name] = source

    def _hook_chosen(self, module, args, output):
        record = self._pass
        if record is None:
            return
        count = record.calls[module] = record.calls.get(module, 0) + 1
        if count not in self._wanted[module]:
            return
        name = call_name(self.names[module], count)
        out = first_tensor(output)
        if out is not None:
            record.keep(name, out, record.outputs, name)
        if module in self.with_inputs and args and isinstance(args[0], torch.Tensor):
            record.keep("<" + name, args[0], record.inputs, name)


def predict_top(logits: torch.Tensor, labels, k: int = 5, index: int = 0) -> list[dict]:
    """Top-``k`` softmax entries of batch item ``index`` of (N, classes) logits or class scores
    (:meth:`~convviz.core.model.loading.LoadedModel.class_scores`): ``{"label","index","prob"}``."""
    row = logits[index] if logits.dim() > 1 else logits
    probs = torch.softmax(row.float().reshape(-1), dim=0)  # as models.class_probabilities
    values, indices = probs.topk(min(k, probs.numel()))
    return [
        {"label": labels[int(i)], "index": int(i), "prob": float(p)}
        for p, i in zip(values.tolist(), indices.tolist())
    ]
