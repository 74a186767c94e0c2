"""The job runner: every background job of the app runs here.

(The one other thread, :mod:`.capture_thread`, only runs the forward passes that job threads
hand it and wait for, so every capture's memory comes from one allocator arena.)

A job is a plain function or a generator function. It runs on the runner's pool (superqt
workers); what it yields is progress (:class:`Progress`, or a string), what it returns is
the result, and both reach the GUI thread as signals of its :class:`JobHandle`. A plain function
that takes a ``report`` parameter gets a callable that sends a :class:`Progress` the same way. Results are
plain data (numpy arrays, dataclasses), never live tensors or widgets.

Cancellation is cooperative (never ``QThread.terminate``): :meth:`JobHandle.cancel` sets
the job's :class:`CancelToken` (passed as the keyword ``cancel`` to functions that take
one) and, unless the job was submitted ``graceful=True``, a generator is also stopped at
its next ``yield``. A graceful job (training) checks the token itself and returns what it
has, so "Cancel" can keep the best model so far.
"""
from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
import traceback
from typing import Callable

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThreadPool, Signal, Slot
from superqt.utils import GeneratorWorker

from convviz.core.errors import first_line
from convviz.core.tasks import TaskProgress

log = logging.getLogger(__name__)


#: How far a job is: ``fraction`` in [0, 1] (None: unknown), a line of text, optional partial results
#: (the same type a core task reports).
Progress = TaskProgress


class CancelToken:
    """Set by :meth:`JobHandle.cancel`; long jobs check :attr:`cancelled` once per batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> bool:  # usable as a ``should_stop`` callable
        return self._event.is_set()


class JobFailed(Exception):
    """Raise in a job for an expected failure: its text is shown as is (one line)."""


class _JobRuntimeError(Exception):
    """A RuntimeError raised by a job (superqt would take it for a deleted worker and drop it)."""


@functools.lru_cache(maxsize=256)
def _shape(func: Callable) -> tuple[bool, bool, bool]:
    """(takes ``cancel``, takes ``report``, is a generator function) of a job function, read once per function."""
    parameters = inspect.signature(func).parameters
    return "cancel" in parameters, "report" in parameters, inspect.isgeneratorfunction(func)


def _run_plain(func, *args, **kwargs):
    """Run a plain function as a generator that yields nothing."""
    return func(*args, **kwargs)
    yield  # pragma: no cover  (makes this a generator)


def _guarded(gen_func, *args, **kwargs):
    """Run ``gen_func``'s generator, re-raising its RuntimeErrors as :class:`_JobRuntimeError`."""
    try:
        return (yield from gen_func(*args, **kwargs))
    except RuntimeError as exc:
        raise _JobRuntimeError(first_line(exc)) from exc


class _Worker(GeneratorWorker):
    """A generator worker that closes its generator when aborted (its ``finally`` blocks run here)."""

    def work(self):
        try:
            return super().work()
        finally:
            self._gen.close()


class JobHandle(QObject):
    """One submitted job. Exactly one of ``finished`` / ``failed`` / ``cancelled``, then ``done``."""

    progress = Signal(object)  #: :class:`Progress`
    finished = Signal(object)  #: the job's return value
    failed = Signal(str)  #: one line for the user
    cancelled = Signal()
    done = Signal()

    def __init__(self, name: str, token: CancelToken, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.token = token
        self.started_at = time.perf_counter()
        self.ended_at: float | None = None
        self.last_progress: Progress | None = None
        self._worker: _Worker | None = None
        self._graceful = False

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def cancel(self) -> None:
        """Ask the job to stop; it ends with ``cancelled`` (or, if graceful, with what it returns)."""
        if not self.running:
            return
        self.token.cancel()
        if self._worker is not None and not self._graceful:
            self._worker.quit()

    # ---- GUI-thread slots fed by the worker's signals -------------------------------
    @Slot(object)
    def _on_yielded(self, value) -> None:
        if not self.running:
            return
        progress = value if isinstance(value, Progress) else Progress(text=str(value))
        self.last_progress = progress
        self.progress.emit(progress)

    @Slot(object)
    def _on_returned(self, value) -> None:
        if self.running:
            self._end(self.cancelled.emit if self.token.cancelled and not self._graceful else
                      (lambda: self.finished.emit(value)))

    @Slot(object)
    def _on_errored(self, exc) -> None:
        if not self.running:
            return
        if not isinstance(exc, JobFailed):
            log.error("job %s failed:\n%s", self.name,
                      "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        self._end(lambda: self.failed.emit(first_line(exc)))

    @Slot()
    def _on_aborted(self) -> None:
        if self.running:
            self._end(self.cancelled.emit)

    def _end(self, emit: Callable[[], None]) -> None:
        self.ended_at = time.perf_counter()
        emit()
        self.done.emit()


class JobRunner(QObject):
    """Starts jobs on a thread pool, tracks them, and waits for all of them on :meth:`shutdown`."""

    busy = Signal(str)  #: text of the newest running job
    idle = Signal()

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None):
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.closed = False
        self._running: dict[JobHandle, _Worker] = {}

    @property
    def jobs(self) -> list[JobHandle]:
        """Handles of the jobs still running, oldest first."""
        return list(self._running)

    def submit(self, func: Callable, *args, name: str = "", graceful: bool = False, **kwargs) -> JobHandle:
        """Run ``func(*args, **kwargs)`` in the pool; a ``cancel`` parameter receives the token."""
        token = CancelToken()
        handle = JobHandle(name or getattr(func, "__name__", "job"), token, self)
        if self.closed:
            handle.ended_at = time.perf_counter()
            return handle
        takes_cancel, takes_report, generator = _shape(func)
        if takes_cancel:
            kwargs["cancel"] = token
        if takes_report:
            kwargs["report"] = lambda value, h=handle: h._worker.yielded.emit(value)
        if generator:
            worker = _Worker(_guarded, func, *args, **kwargs)
        else:
            worker = _Worker(_guarded, _run_plain, func, *args, **kwargs)
        handle._worker, handle._graceful = worker, graceful
        worker.yielded.connect(handle._on_yielded)
        worker.returned.connect(handle._on_returned)
        worker.errored.connect(handle._on_errored)
        worker.aborted.connect(handle._on_aborted)
        worker.finished.connect(lambda h=handle: self._forget(h))
        handle.progress.connect(lambda p, h=handle: self._on_progress(h, p))
        self._running[handle] = worker
        self.busy.emit(handle.name)
        self.pool.start(worker)
        return handle

    def cancel_all(self) -> None:
        for handle in list(self._running):
            handle.cancel()

    def shutdown(self, timeout_s: float = 1.0) -> bool:
        """Cancel every job and wait up to ``timeout_s`` for them; True when none is left."""
        self.closed = True
        self.cancel_all()
        deadline = time.monotonic() + timeout_s
        while self._running and time.monotonic() < deadline:
            self.pool.waitForDone(10)
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        if self._running:
            log.info("%d job(s) still running after %.1f s: %s", len(self._running), timeout_s,
                        ", ".join(h.name for h in self._running))
        return not self._running

    def _forget(self, handle: JobHandle) -> None:
        self._running.pop(handle, None)
        if handle.running:  # the worker finished without a result signal (deleted, interpreter exit)
            handle._end(handle.cancelled.emit)
        if self.closed:
            return
        if self._running:
            newest = list(self._running)[-1]
            self.busy.emit(newest.last_progress.text if newest.last_progress else newest.name)
        else:
            self.idle.emit()

    def _on_progress(self, handle: JobHandle, progress: Progress) -> None:
        if not self.closed and progress.text and handle is list(self._running or [None])[-1]:
            self.busy.emit(progress.text)
