"""Running a core task (:mod:`convviz.core.tasks`) on the job runner: what the worker thread does.

:func:`task_job` hands the task what its needs ask for — the live model under the engine's lock,
a private copy of it, a second model, the current image — and a :class:`~convviz.core.tasks.TaskState`
whose progress becomes the job's signals and whose ``cancelled`` is the job's cancel token (or a
newer request of the same key). A paced task (training) waits after each partial result until the
GUI has drawn it (:class:`UpdateGate`).
"""
from __future__ import annotations

import contextlib
import threading

from convviz.core.errors import first_line
from convviz.core.tasks import Cancelled, Need, TaskInputs, TaskState

from .jobs import CancelToken, JobFailed
from .process import freeze_long_lived, gui_friendly, share_rng_lock

#: the longest a paced task waits for the GUI to draw an update before it goes on
SHOWN_WAIT_S = 0.1


class UpdateGate:
    """Lets a task pause until the GUI has drawn the update it just sent.

    Drawing an update (curves, axes) is 8-18 ms of Python on the GUI thread; with training running
    Python beside it the two share the GIL and the same drawing stalled the event loop 37-47 ms
    (measured). So after each partial result the task waits (at most :data:`SHOWN_WAIT_S`) until the
    GUI calls :meth:`shown` with the number of updates it has drawn.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._event.set()
        self._sent = 0
        self._lock = threading.Lock()

    def sent(self) -> None:
        """The task: one more update is on its way."""
        with self._lock:
            self._sent += 1
            self._event.clear()

    def shown(self, count: int) -> None:
        """The GUI: the first ``count`` updates are drawn (a late answer to an older update opens nothing)."""
        with self._lock:
            if count >= self._sent:
                self._event.set()

    def wait(self, timeout: float = SHOWN_WAIT_S) -> bool:
        """The task: True once the GUI has drawn everything sent, False after ``timeout`` seconds."""
        return self._event.wait(timeout)


def task_job(engine, still_current, task, args: dict, rgb, gate: UpdateGate | None = None,
             report=None, cancel: CancelToken | None = None):
    """Run ``task`` with what it needs (worker thread); failures become one line (:class:`JobFailed`)."""
    if not still_current():
        return None
    share_rng_lock()

    def emit(progress) -> None:
        if gate is not None and progress.partial is not None:
            gate.sent()
            report(progress)
            gate.wait()
        elif report is not None:
            report(progress)

    stopped = lambda: (cancel is not None and cancel.cancelled) or not still_current()  # noqa: E731
    state = TaskState(emit, stopped)
    try:
        with _inputs(engine, task, args, rgb) as inputs, (gui_friendly() if task.graceful else contextlib.nullcontext()):
            if stopped():
                return None
            return task.run(inputs, state)
    except Cancelled:
        return None
    except (ValueError, OSError) as exc:  # bad settings, files or input (ModelError and ImageError are ValueErrors)
        raise JobFailed(first_line(exc)) from None


@contextlib.contextmanager
def _inputs(engine, task, args: dict, rgb):
    """The task's inputs; for ``Need.MODEL`` the engine's lock is held while the task runs."""
    needs = task.needs
    second = None
    if Need.SECOND_MODEL in needs:
        from convviz.core.model.loading import load_model

        second = load_model(args["second_spec"], require_weights=False)
    lock = engine.lock if Need.MODEL in needs else contextlib.nullcontext()
    with lock:
        if (Need.MODEL in needs or Need.MODEL_COPY in needs) and engine.loaded is None:
            raise ValueError("no model is loaded yet")
        info = engine.info
        model = engine.loaded if Need.MODEL in needs else engine.model_copy() if Need.MODEL_COPY in needs else None
        if Need.MODEL_COPY in needs and task.graceful:
            freeze_long_lived()  # the copy lives for the whole run: a full collection never rescans it
        grad = contextlib.nullcontext()
        if Need.GRADIENTS in needs:
            import torch

            grad = torch.enable_grad()
        with grad:
            yield TaskInputs(dict(args), model, rgb if Need.IMAGE in needs else None, second,
                             info.rows if info is not None else ())
