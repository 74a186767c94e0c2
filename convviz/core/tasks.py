"""Long work as plain functions: a *task* is ``run(inputs, state) -> result``.

A task reports typed progress through ``state`` (:meth:`TaskState.progress`), may hand over
partial results (:meth:`TaskState.partial`) and checks :attr:`TaskState.cancelled` (or calls
:meth:`TaskState.check`) at least once per batch. It declares what it is about (its
:class:`Scope`) and what it needs from whoever runs it (:class:`Needs`), so the GUI session
knows when to drop or replay it and what to hand it, and the CLI runs the same function with a
:class:`TaskState` whose progress goes to tqdm. Nothing here knows about threads or Qt
(the shapes of Orange3's ``TaskState`` and superqt's ``GeneratorWorker``).

Register a task with :func:`task`; :func:`get_task` finds it by name (``module:function``).
"""
from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable


class Scope(enum.Enum):
    """What a task's result describes: it is stale (cancelled or replayed) when that changes."""

    IMAGE = "image"  #: the current image and model (Grad-CAM, detection, ERF)
    FOLDER = "folder"  #: a folder of images and the model (top patches)
    MODEL = "model"  #: the model alone (weight change, parameter counts)
    NONE = "none"  #: neither (scanning a folder, saving a file)


class Need(enum.Enum):
    """What a task asks of the runner beyond its own inputs."""

    MODEL = "model"  #: the current model, read-only, while no other work uses it (eval mode)
    GRADIENTS = "gradients"  #: autograd on (the runner never turns it off for this task)
    MODEL_COPY = "model_copy"  #: a private copy of the current model it may change (training)
    SECOND_MODEL = "second_model"  #: another model, named by ``inputs.second_spec``
    IMAGE = "image"  #: the current image (``inputs.rgb``)


class Cancelled(Exception):
    """Raised by :meth:`TaskState.check` when the task was asked to stop."""


@dataclass(frozen=True)
class TaskProgress:
    """How far a task is: ``fraction`` in [0, 1] (None: unknown) and one line of text."""

    fraction: float | None = None
    text: str = ""
    partial: Any = None  #: a partial result the UI may already show (plain data)


class TaskState:
    """What a running task sees of its runner: where progress goes and whether to stop.

    ``report`` receives every :class:`TaskProgress`; ``should_stop`` answers "was I cancelled?".
    Both default to nothing (a task run directly, as in tests).
    """

    def __init__(self, report: Callable[[TaskProgress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self._report = report
        self._should_stop = should_stop

    @property
    def cancelled(self) -> bool:
        return bool(self._should_stop and self._should_stop())

    def check(self) -> None:
        """Raise :class:`Cancelled` when the task was asked to stop (call it once per batch)."""
        if self.cancelled:
            raise Cancelled()

    def progress(self, fraction: float | None, text: str = "") -> None:
        if self._report is not None:
            self._report(TaskProgress(None if fraction is None else min(1.0, max(0.0, float(fraction))), text))

    def partial(self, result: Any, fraction: float | None = None, text: str = "") -> None:
        if self._report is not None:
            self._report(TaskProgress(fraction, text, result))


@dataclass(frozen=True)
class TaskInputs:
    """What the runner hands a task: its own arguments plus what its :class:`Need` s asked for."""

    args: dict = field(default_factory=dict)  #: the task's own arguments (plain data)
    model: Any = None  #: :class:`convviz.core.model.loading.LoadedModel` (MODEL or MODEL_COPY)
    rgb: Any = None  #: (H, W, 3) uint8 of the current image (IMAGE)
    second: Any = None  #: the second :class:`LoadedModel` (SECOND_MODEL)
    rows: tuple = ()  #: the current model's layer-table rows, when known


@dataclass(frozen=True)
class Task:
    """A registered long-work function with its scope and needs."""

    name: str
    run: Callable[[TaskInputs, TaskState], Any]
    scope: Scope
    needs: frozenset = frozenset()
    title: str = ""  #: what the busy line says while it runs ("Computing Grad-CAM…")
    #: when cancelled it still returns what it has (training keeps the best model so far); otherwise
    #: it raises :class:`Cancelled` and its result is dropped
    graceful: bool = False

    def __call__(self, inputs: TaskInputs, state: TaskState | None = None):
        return self.run(inputs, state or TaskState())


_TASKS: dict[str, Task] = {}


def task(scope: Scope, needs: tuple = (), title: str = "", graceful: bool = False):
    """Register the decorated ``run(inputs, state)`` as a task named ``module:function``, where
    ``module`` is its path under ``convviz.core`` (``where.gradcam:gradcam_task``)."""

    def register(func):
        name = f"{func.__module__.removeprefix('convviz.core.')}:{func.__name__}"
        _TASKS[name] = Task(name, func, scope, frozenset(needs), title or f"{func.__name__}…", graceful)
        func.task = _TASKS[name]
        return func

    return register


def get_task(name: str) -> Task:
    """The task ``module:function`` (its module is imported on first use)."""
    if name not in _TASKS and ":" in name:
        try:
            importlib.import_module("convviz.core." + name.split(":")[0])
        except ImportError:
            pass
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"no task called {name!r}") from None
