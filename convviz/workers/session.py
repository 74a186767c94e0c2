"""The GUI-side model of state, whose methods start background work and whose signals
deliver plain results.

Every request gets a :class:`~convviz.workers.results.Ticket`; a result whose ticket is
no longer the newest of its kind is dropped, in the worker (before computing) and again
on the GUI thread (before emitting). Work runs as superqt workers on the global
QThreadPool; :meth:`Session.shutdown` asks them to quit and waits for them.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import partial

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThreadPool, Signal
from superqt.utils import create_worker

from convviz.core.errors import first_line
from convviz.core.images import ImageError, LoadedImage, load_image

from .engine import Engine
from .results import Generations, ModelInfo, Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A request that failed; ``message`` is one line for the user."""

    message: str
    needs_trust: bool = False


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
    from convviz.core.model_files import ModelError, PickledModelError

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
        engine.install(loaded, info)
    return info


def _view_job(engine: Engine, gens: Generations, ticket: Ticket, method: str, image_key, rgb, *args):
    """Run one cached view computation of the engine (worker thread)."""
    with engine.lock:
        if not gens.is_current(ticket) or engine.loaded is None:
            return None
        try:
            return getattr(engine, method)(image_key, rgb, *args)
        except Exception as exc:
            log.debug("view %s failed", method, exc_info=True)
            return Failure(first_line(exc))


class Session(QObject):
    """Current model, image and view requests; results arrive as signals on the GUI thread."""

    busy = Signal(str)
    idle = Signal()
    image_loaded = Signal(object)  #: LoadedImage
    image_failed = Signal(str)
    model_loaded = Signal(object)  #: ModelInfo
    model_failed = Signal(str)
    model_needs_trust = Signal(str, str)  #: spec, message: a pickled file was refused
    layers_ready = Signal(list)  #: LayerRow per module call
    predictions_ready = Signal(list, float)  #: [{label, index, prob}], forward ms
    activation_ready = Signal(str, object, object, object)  #: name, mosaic, shape, ChannelStats
    conv_data_ready = Signal(object)
    view_failed = Signal(str)

    def __init__(self, parent: QObject | None = None, engine: Engine | None = None):
        super().__init__(parent)
        self.engine = engine or Engine()
        self.gens = Generations()
        self.model_info: ModelInfo | None = None
        self.image: LoadedImage | None = None
        self.requested_spec: str | None = None
        self.last_forward_ms: float | None = None
        self.layer: str | None = None
        self.conv_layer: str | None = None
        self._image_key = 0
        self._jobs: dict[object, str] = {}

    # ----------------------------------------------------------------- requests
    def load_model(self, spec: str, allow_pickle: bool = False) -> None:
        """Load ``spec`` in the background; the old model stays until the new one is ready."""
        spec = (spec or "default").strip()
        self.requested_spec = spec
        ticket = self.gens.next("model")
        self._start(_model_job, (self.engine, self.gens, ticket, spec, allow_pickle),
                    partial(self._on_model, ticket, spec), f"Loading model {spec}…", progress=True)

    def open_image(self, path: str) -> None:
        """Decode ``path`` in the background; a bad file leaves the current image in place."""
        ticket = self.gens.next("image")
        self._start(_image_job, (self.gens, ticket, os.fspath(path)),
                    partial(self._on_image, ticket), f"Opening {os.path.basename(path)}…")

    def set_image(self, image: LoadedImage) -> None:
        """Use an already decoded image (clipboard, tests) as the current one."""
        self.gens.next("image")
        self._accept_image(image)

    def request_predictions(self) -> None:
        """Top-5 of the current image under the current model (one forward pass, cached)."""
        if self._ready():
            ticket = self.gens.next("forward")
            self._start_view(ticket, "predictions", (), self._on_predictions, "Running the model…")

    def request_layer(self, name: str) -> None:
        """Mosaic of all channels of layer ``name`` (from the cache when possible)."""
        self.layer = name
        if self._ready() and name:
            ticket = self.gens.next("layer")
            self._start_view(ticket, "activation", (name,), partial(self._on_activation, name), "Rendering layer…")

    def request_conv_layer(self, name: str) -> None:
        """Input, output and weights of Conv2d ``name`` for the Convolution panel."""
        self.conv_layer = name
        if self._ready() and name:
            ticket = self.gens.next("conv")
            self._start_view(ticket, "conv_data", (name,), self._on_conv_data, "Probing convolution…")

    @property
    def forward_passes(self) -> int:
        """How many forward passes filled the activation cache so far."""
        return self.engine.cache.computed if self.engine._cache is not None else 0

    def shutdown(self, timeout_s: float = 60.0) -> bool:
        """Drop every pending result, ask workers to quit and wait for them (never terminate)."""
        self.gens.closed = True
        for worker in list(self._jobs):
            worker.quit()
        deadline = time.monotonic() + timeout_s
        pool = QThreadPool.globalInstance()
        while self._jobs and time.monotonic() < deadline:
            pool.waitForDone(20)
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        if self._jobs:
            log.warning("%d background job(s) still running after %.0f s", len(self._jobs), timeout_s)
        return not self._jobs

    # ------------------------------------------------------------------ plumbing
    def _ready(self) -> bool:
        return not self.gens.closed and self.model_info is not None and self.image is not None

    def _start_view(self, ticket: Ticket, method: str, args: tuple, on_result, text: str) -> None:
        image = self.image
        self._start(_view_job, (self.engine, self.gens, ticket, method, self._image_key, image.rgb, *args),
                    partial(self._deliver, ticket, on_result), text)

    def _start(self, func, args: tuple, on_result, text: str, progress: bool = False) -> None:
        if self.gens.closed:
            return
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(on_result)
        worker.errored.connect(self._on_error)
        worker.finished.connect(partial(self._forget, worker))
        if progress:
            worker.yielded.connect(partial(self._on_progress, worker))
        self._jobs[worker] = text
        self.busy.emit(text)
        worker.start()

    def _forget(self, worker) -> None:
        self._jobs.pop(worker, None)
        if self.gens.closed:
            return
        if self._jobs:
            self.busy.emit(list(self._jobs.values())[-1])
        else:
            self.idle.emit()

    def _on_progress(self, worker, text) -> None:
        if worker in self._jobs and not self.gens.closed:
            self._jobs[worker] = str(text)
            self.busy.emit(str(text))

    def _on_error(self, exc: BaseException) -> None:
        if not self.gens.closed:
            log.error("background job failed", exc_info=exc)
            self.view_failed.emit(first_line(exc, "internal error: "))

    def _deliver(self, ticket: Ticket, on_result, result) -> None:
        if result is None or not self.gens.is_current(ticket):
            return
        if isinstance(result, Failure):
            self.view_failed.emit(result.message)
        else:
            on_result(result)

    # ------------------------------------------------------------------ results
    def _on_model(self, ticket: Ticket, spec: str, result) -> None:
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
        self.layer = self.conv_layer = None
        self.model_loaded.emit(result)
        self.layers_ready.emit(list(result.rows))
        self.request_predictions()

    def _on_image(self, ticket: Ticket, result) -> None:
        if result is None or not self.gens.is_current(ticket):
            return
        if isinstance(result, Failure):
            self.image_failed.emit(result.message)
        else:
            self._accept_image(result)

    def _accept_image(self, image: LoadedImage) -> None:
        self.image = image
        self._image_key += 1
        self.image_loaded.emit(image)
        self.request_predictions()
        if self.layer:
            self.request_layer(self.layer)
        if self.conv_layer:
            self.request_conv_layer(self.conv_layer)

    def _on_predictions(self, result) -> None:
        top, ms = result
        self.last_forward_ms = ms
        self.predictions_ready.emit(top, ms)

    def _on_activation(self, name: str, result) -> None:
        mosaic, shape, stats = result
        self.activation_ready.emit(name, mosaic, shape, stats)

    def _on_conv_data(self, result) -> None:
        self.conv_data_ready.emit(result)
