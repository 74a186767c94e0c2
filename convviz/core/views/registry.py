"""Views: short work, plain core functions of one capture that return frozen, plain data.

A view is ``fn(ctx: ViewContext, **args) -> frozen dataclass`` (numpy arrays, numbers,
strings; never a tensor or a module) registered under a *kind* with :func:`view`. A panel
subscribes a slot to a view (``session.request_view(key, kind, layer, **args)``); the
worker-side engine (:class:`convviz.workers.engine.Engine`) builds the :class:`ViewContext`
from the activation cache (one forward pass per model and image) and calls the function,
and the session replays the subscription when the image or model changes. A view is the
special case of a task (:mod:`convviz.core.tasks`) whose scope is one image and which needs
only the capture. Nothing here knows about threads or Qt.

A view that shows a prediction reads :meth:`ViewContext.class_scores` (the model's one
scoring function, mirror averaging included). Adding a view is: write the function in a
core module, decorate it with ``@view("kind")``, and list the module in :data:`VIEW_MODULES`
so it is imported.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

#: Core modules whose ``@view`` functions are registered on first use.
VIEW_MODULES = (
    "convviz.core.views.standard",
    "convviz.core.labs.views",
    "convviz.core.views.filters",
    "convviz.core.views.layer",
)

_REGISTRY: dict[str, Callable[..., Any]] = {}
_imported = False


@dataclass(frozen=True)
class ViewContext:
    """What a view function may read: the capture, the model, and the layer asked for."""

    capture: Any  #: :class:`convviz.core.capture.activations.Capture` of the current image
    model: Any  #: :class:`convviz.core.model.loading.LoadedModel`
    layer: str | None = None  #: record name (``blocks.2.1.conv_dw``, ``layer1.0.relu:2``)
    module: Any = None  #: the ``nn.Module`` at ``layer`` (None for ``:2`` calls' base lookup failures)
    row: Any = None  #: :class:`convviz.core.capture.layer_table.LayerRow` of ``layer`` (None if absent)
    forward_ms: float = 0.0  #: time of the forward pass that filled ``capture``
    make_input: Any = None  #: ``() -> (1, 3, S, S)`` tensor: the model's input for this image (None: unknown)

    def output(self):
        """The layer's output for batch item 0 as float32 numpy (C, H, W) / (N,)."""
        return self.capture.output_array(self.require_layer())

    def input(self):
        """The layer's input for batch item 0 as float32 numpy, if it was recorded."""
        name = self.require_layer()
        if name not in self.capture.inputs:
            raise ValueError(f"{name}: its input was not recorded (only conv, pool, activation, dropout, linear)")
        return self.capture.inputs[name][0].detach().float().cpu().numpy()

    def class_scores(self):
        """(1, classes) class scores of this image as the model predicts them: its captured logits, or for
        a model that averages with the mirror image (``model.mirror``) that average. Every view that
        shows a prediction reads it here (:meth:`convviz.core.model.loading.LoadedModel.class_scores`)."""
        if self.model.mirror and self.make_input is None:
            raise ValueError("this model predicts from the image and its mirror image; the view has no input to mirror")
        x = self.make_input() if self.model.mirror else None
        return self.model.class_scores(x, self.capture.logits[:1])

    def require_layer(self) -> str:
        if not self.layer or self.layer not in self.capture.outputs:
            raise ValueError(f"{self.layer!r}: not a layer of this model")
        return self.layer


def view(kind: str):
    """Register the decorated function as the view ``kind``."""

    def register(fn):
        if kind in _REGISTRY and _REGISTRY[kind] is not fn:
            raise ValueError(f"view kind {kind!r} registered twice")
        _REGISTRY[kind] = fn
        return fn

    return register


def get_view(kind: str) -> Callable[..., Any]:
    """The view function registered as ``kind`` (imports :data:`VIEW_MODULES` once)."""
    global _imported
    if not _imported:
        for name in VIEW_MODULES:
            importlib.import_module(name)
        _imported = True
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ValueError(f"no view of kind {kind!r}") from None


def view_kinds() -> list[str]:
    """Every registered kind (after importing :data:`VIEW_MODULES`)."""
    try:
        get_view("")
    except ValueError:
        pass
    return sorted(_REGISTRY)
