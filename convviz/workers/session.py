"""The GUI-side model of state: the current model and image, and the views panels subscribe to.

A panel asks for a view by kind — ``session.request_view(key, kind, layer, **args)`` —
and gets ``view_ready(key, data)`` (or ``view_failed(key, message)``) back on the GUI
thread; ``data`` is the frozen result of the core view function (:mod:`convviz.core.views.registry`).
The session remembers each key's subscription and replays them all when the image or the
model changes (announced first by ``views_stale``), so what a panel shows never describes
an older image or model. Every request gets a ticket; a stale result is dropped in the
worker (before computing) and again on the GUI thread (before emitting). All work runs
through one :class:`~convviz.workers.jobs.JobRunner`.

Long work (a folder, gradients, a second model, training) is a core task run by key
(``session.run_task``): see :mod:`.session_tasks`.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from functools import partial

from PySide6.QtCore import QObject, Signal

from convviz.core.errors import first_line
from convviz.core.images import ImageError, LoadedImage, load_image

from .engine import Engine
from .jobs import JobRunner
from .process import freeze_long_lived
from .results import Generations, ModelInfo, Ticket
from .session_tasks import IMAGE_CHANGE, MODEL_CHANGE, SessionTasks

#: Image keys are unique across sessions, so sessions sharing an engine never share a cache entry.
_image_keys = itertools.count(1)


@dataclass(frozen=True)
class Failure:
    """A request that failed; ``message`` is one line for the user."""

    message: str
    needs_trust: bool = False


@dataclass(frozen=True)
class Subscription:
    """What one panel slot shows: a view kind, the layer it is about, its arguments."""

    kind: str
    layer: str | None = None
    args: dict = field(default_factory=dict)


def _image_job(gens: Generations, ticket: Ticket, path: str):
    """Decode an image file (worker thread)."""
    if not gens.is_current(ticket):
        return None
    try:
        return load_image(path)
    except ImageError as exc:
        return Failure(str(exc))
    except Exception as exc:  # Pillow can raise anything on hostile files
        return Failure(first_line(exc, f"{os.path.basename(path)}: "))


def _model_job(engine: Engine, gens: Generations, ticket: Ticket, spec: str, allow_pickle: bool):
    """Import torch, build the model, trace its layer table, install it (worker thread)."""
    yield "Starting PyTorch…"
    engine.import_torch()
    from convviz.core.model.files import ModelError, PickledModelError

    if not gens.is_current(ticket):
        return None
    yield f"Loading model {spec}…"
    try:
        loaded = engine.build(spec, allow_pickle)
        if not gens.is_current(ticket):
            return None
        yield "Tracing the layer table…"
        info = engine.describe(loaded)
    except ModelError as exc:
        return Failure(str(exc), needs_trust=isinstance(exc, PickledModelError))
    except Exception as exc:
        return Failure(first_line(exc, f"{spec}: could not load the model: "))
    with engine.lock:
        if not gens.is_current(ticket):
            return None
        engine.install(loaded, info, trusted=allow_pickle)
    return info


def _view_job(engine: Engine, gens: Generations, ticket: Ticket, sub: Subscription, image_key, rgb):
    """Compute one view from the engine's activation cache (worker thread, under the engine lock)."""
    with engine.lock:
        if not gens.is_current(ticket) or engine.loaded is None:
            return None
        try:
            return engine.view(sub.kind, sub.layer, sub.args, image_key, rgb)
        except Exception as exc:  # the model's forward or the view failed on this input
            return Failure(first_line(exc))


class Session(QObject, SessionTasks):
    """Current model, image, view subscriptions and tasks; results arrive as signals on the GUI thread."""

    busy = Signal(str)
    idle = Signal()
    image_loaded = Signal(object)  #: LoadedImage
    image_failed = Signal(str)
    model_loaded = Signal(object)  #: ModelInfo
    model_failed = Signal(str)
    model_needs_trust = Signal(str, str)  #: spec, message: a pickled or TorchScript file was refused
    layers_ready = Signal(list)  #: LayerRow per module call
    views_stale = Signal()  #: the image or model changed; every shown view is being recomputed
    view_ready = Signal(str, object)  #: key, frozen view data
    view_failed = Signal(str, str)  #: key, one-line message
    task_progress = Signal(str, object)  #: key, core TaskProgress (text, fraction, maybe a partial result)
    task_ready = Signal(str, object)  #: key, the task's plain result
    task_failed = Signal(str, str)  #: key, one-line message
    task_cancelled = Signal(str)  #: key: it stopped on request, without a result
    task_stale = Signal(str)  #: key: its image or model changed; what it showed no longer applies

    def __init__(self, parent: QObject | None = None, engine: Engine | None = None,
                 runner: JobRunner | None = None):
        super().__init__(parent)
        self.engine = engine or Engine()
        self.runner = runner or JobRunner(self)
        self.runner.busy.connect(self.busy)
        self.runner.idle.connect(self.idle)
        self.gens = Generations()
        self.model_info: ModelInfo | None = None
        self.image: LoadedImage | None = None
        self.requested_spec: str | None = None
        self.model_trusted = False
        self._image_key = 0
        self._subs: dict[str, Subscription] = {}
        self._init_tasks()

    # ----------------------------------------------------------------- requests
    def load_model(self, spec: str, allow_pickle: bool = False) -> None:
        """Load ``spec`` in the background; the old model stays until the new one is ready."""
        spec = (spec or "default").strip()
        self.requested_spec = spec
        ticket = self.gens.next("model")
        handle = self.runner.submit(_model_job, self.engine, self.gens, ticket, spec, allow_pickle,
                                    name=f"Preparing model {spec}…")
        handle.finished.connect(partial(self._on_model, ticket, spec, allow_pickle))
        handle.failed.connect(self.model_failed)

    def open_image(self, path: str) -> None:
        """Decode ``path`` in the background; a bad file leaves the current image in place."""
        ticket = self.gens.next("image")
        handle = self.runner.submit(_image_job, self.gens, ticket, os.fspath(path),
                                    name=f"Opening {os.path.basename(path)}…")
        handle.finished.connect(partial(self._on_image, ticket))
        handle.failed.connect(self.image_failed)

    def set_image(self, image: LoadedImage) -> None:
        """Use an already decoded image (clipboard, tests) as the current one."""
        self.gens.next("image")
        self._accept_image(image)

    def request_view(self, key: str, kind: str, layer: str | None = None, **args) -> None:
        """Subscribe slot ``key`` to view ``kind`` of ``layer``; the result comes as ``view_ready(key, data)``.

        The subscription is replayed whenever the image or model changes; a newer request
        for the same ``key`` makes older ones stale.
        """
        sub = Subscription(kind, layer or None, dict(args))
        self._subs.pop(key, None)  # the newest subscription is replayed first (see _replay)
        self._subs[key] = sub
        self._start_view(key, sub)

    def drop_view(self, key: str) -> None:
        """Forget slot ``key``: nothing more is computed or delivered for it."""
        self._subs.pop(key, None)
        self.gens.next(f"view:{key}")

    def subscription(self, key: str) -> Subscription | None:
        return self._subs.get(key)

    def adopt_installed_model(self) -> None:
        """Mirror the model the engine already holds (a shared engine, or one a job installed)."""
        info = self.engine.info
        if info is None:
            raise ValueError("the engine holds no model")
        self.gens.next("model")
        self._on_model(Ticket("model", 0), info.spec, self.engine.trusted, info)

    @property
    def ready(self) -> bool:
        """True when a model and an image are in (views can be computed)."""
        return not self.gens.closed and self.model_info is not None and self.image is not None

    @property
    def forward_passes(self) -> int:
        """How many forward passes filled the activation cache so far."""
        return self.engine.forward_passes

    def shutdown(self, timeout_s: float = 1.0) -> bool:
        """Drop every pending result, cancel all jobs and wait up to ``timeout_s`` (never terminate)."""
        self.gens.closed = True
        return self.runner.shutdown(timeout_s)

    # ------------------------------------------------------------------ plumbing
    def _start_view(self, key: str, sub: Subscription):
        """Submit the job of one subscription; its handle (None when no model or image is in)."""
        ticket = self.gens.next(f"view:{key}")
        if not self.ready:
            return None
        handle = self.runner.submit(_view_job, self.engine, self.gens, ticket, sub, self._image_key, self.image.rgb,
                                    name=f"Computing {sub.kind}…")
        handle.finished.connect(partial(self._deliver, key, ticket))
        handle.failed.connect(partial(self._deliver_failure, key, ticket))
        return handle

    def _deliver(self, key: str, ticket: Ticket, result) -> None:
        if result is None or not self.gens.is_current(ticket):
            return
        if isinstance(result, Failure):
            self.view_failed.emit(key, result.message)
        else:
            self.view_ready.emit(key, result)

    def _deliver_failure(self, key: str, ticket: Ticket, message: str) -> None:
        if self.gens.is_current(ticket):
            self.view_failed.emit(key, message)

    def _replay(self) -> None:
        """Recompute every subscription for the new image or model, the most recently asked first: what
        the user just looked at (a layer's maps) before what was set up long ago (the predictions).

        The others are submitted once the first has been delivered: they all wait for the same forward
        pass anyway, and started together their jobs hold the GIL just when the GUI thread takes the
        first result in and paints it. Their older results are made stale at once.
        """
        self.views_stale.emit()
        subs = list(reversed(self._subs.items()))
        if not subs:
            return
        first, *others = subs
        waiting = [(key, sub, self.gens.next(f"view:{key}")) for key, sub in others]
        handle = self._start_view(*first)
        if handle is None or not handle.running:
            self._start_waiting(waiting)
        else:
            handle.done.connect(partial(self._start_waiting, waiting))

    def _start_waiting(self, waiting: list) -> None:
        """Start the (key, subscription, ticket) a replay held back, unless a newer replay, request or
        drop of the key has made its ticket stale."""
        for key, sub, ticket in waiting:
            if self.gens.is_current(ticket):
                self._start_view(key, sub)

    # ------------------------------------------------------------------ results
    def _on_model(self, ticket: Ticket, spec: str, trusted: bool, result) -> None:
        if self.gens.closed or result is None:
            return
        if isinstance(result, Failure):
            if not self.gens.is_current(ticket):
                return
            if result.needs_trust:
                self.model_needs_trust.emit(spec, result.message)
            else:
                self.model_failed.emit(result.message)
            return
        # The engine installed this model, so the GUI mirrors it even if a newer request is pending.
        self.model_info = result
        self.model_trusted = trusted
        names = {row.name for row in result.rows}
        self._subs = {k: s for k, s in self._subs.items() if s.layer is None or s.layer in names}
        freeze_long_lived()  # torch, timm, Qt and the model live as long as the session
        self._scope_changed(MODEL_CHANGE)  # before the news, so tasks requested on it are about the new model
        self.model_loaded.emit(result)
        self.layers_ready.emit(list(result.rows))
        self._replay()

    def _on_image(self, ticket: Ticket, result) -> None:
        if result is None or not self.gens.is_current(ticket):
            return
        if isinstance(result, Failure):
            self.image_failed.emit(result.message)
        else:
            self._accept_image(result)

    def _accept_image(self, image: LoadedImage) -> None:
        self.image = image
        self._image_key = next(_image_keys)
        self._scope_changed(IMAGE_CHANGE)
        # the views first: their forward pass starts before the panels take the photo in (new image →
        # first maps ~1.8 ms sooner, bench_layers A/B), and they mark what they show stale first
        self._replay()
        self.image_loaded.emit(image)
