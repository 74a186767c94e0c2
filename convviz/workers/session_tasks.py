"""The session's half of the task seam: run core tasks by key, drop or replay them when their scope changes.

A panel calls ``session.run_task(key, "where.gradcam:gradcam_task", replay=True, layer=…)`` and
listens to ``task_progress`` / ``task_ready`` / ``task_failed`` / ``task_cancelled`` / ``task_stale``
(all carry the key first). A newer run of the same key makes the older one stale (it is cancelled
and nothing of it is delivered). When the image changes, image-scoped tasks are stale; when the model
changes, every task about the model (image, folder or model scope) is. A stale task started with
``replay=True`` runs again with the same arguments on the new image or model; one without is
cancelled and announced with ``task_stale(key)``, so the panel can clear what it shows.
Widgets keep no generation counters: the session's tickets do that job.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from convviz.core.tasks import Need, Scope, Task, get_task

from .task_jobs import UpdateGate, task_job

#: scopes made stale by a new image / a new model
IMAGE_CHANGE = frozenset({Scope.IMAGE})
MODEL_CHANGE = frozenset({Scope.IMAGE, Scope.FOLDER, Scope.MODEL})


@dataclass
class TaskRun:
    """One key's current task: what to run, how, and what came of it."""

    task: Task
    args: dict
    replay: bool
    gate: UpdateGate | None = None
    handle: Any = None  #: the running JobHandle (None before it starts)
    result: Any = None  #: the last result delivered for this run (None: none yet, or stale)


class SessionTasks:
    """Mixed into :class:`~convviz.workers.session.Session` (which declares the ``task_*`` signals)."""

    def _init_tasks(self) -> None:
        self._tasks: dict[str, TaskRun] = {}

    def run_task(self, key: str, task: str | Task, replay: bool = False, paced: bool = False, **args) -> None:
        """Run ``task`` (a :class:`Task`, a ``@task`` function or its name) as slot ``key``.

        ``paced``: the task waits after each partial result until :meth:`task_shown` says the GUI drew it.
        """
        task = get_task(task) if isinstance(task, str) else getattr(task, "task", task)
        self._tasks[key] = TaskRun(task, dict(args), replay, UpdateGate() if paced else None)
        self._start_task(key)

    def cancel_task(self, key: str) -> None:
        """Ask ``key``'s task to stop: it ends with ``task_cancelled`` (a graceful one with ``task_ready``)."""
        run = self._tasks.get(key)
        if run is not None and run.handle is not None:
            run.handle.cancel()

    def task_running(self, key: str) -> bool:
        run = self._tasks.get(key)
        return run is not None and run.handle is not None and run.handle.running

    def task_result(self, key: str):
        """The result last delivered for ``key``, None when there is none or it went stale."""
        run = self._tasks.get(key)
        return run.result if run is not None else None

    def task_shown(self, key: str, count: int) -> None:
        """The GUI has drawn the first ``count`` partial results of ``key``'s paced task."""
        run = self._tasks.get(key)
        if run is not None and run.gate is not None:
            run.gate.shown(count)

    # ------------------------------------------------------------------ plumbing
    def _start_task(self, key: str) -> None:
        run = self._tasks[key]
        ticket = self._retire(key, run)
        missing = self._missing(run.task)
        if missing:
            self.task_failed.emit(key, missing)
            return
        current = partial(self.gens.is_current, ticket)
        rgb = self.image.rgb if self.image is not None else None
        handle = self.runner.submit(task_job, self.engine, current, run.task, run.args, rgb, run.gate,
                                    name=run.task.title, graceful=run.task.graceful)
        run.handle = handle
        handle.progress.connect(lambda p: current() and self.task_progress.emit(key, p))
        handle.finished.connect(lambda result: current() and self._task_done(key, run, result))
        handle.failed.connect(lambda message: current() and self.task_failed.emit(key, message))
        handle.cancelled.connect(lambda: current() and self.task_cancelled.emit(key))

    def _task_done(self, key: str, run: TaskRun, result) -> None:
        if result is None:  # it stopped (cancelled between batches) without a result
            self.task_cancelled.emit(key)
            return
        run.result = result
        self.task_ready.emit(key, result)

    def _missing(self, task: Task) -> str:
        """Why ``task`` cannot run now ("" when it can)."""
        if self.gens.closed:
            return "the session is closed"
        wants_model = {Need.MODEL, Need.MODEL_COPY} & task.needs or task.scope in (Scope.IMAGE, Scope.MODEL, Scope.FOLDER)
        if wants_model and self.model_info is None:
            return "No model is loaded yet."
        if (Need.IMAGE in task.needs or task.scope is Scope.IMAGE) and self.image is None:
            return "Open an image first."
        return ""

    def _scope_changed(self, scopes: frozenset) -> None:
        """The image or model changed: replay or drop every task whose scope is in ``scopes``."""
        for key, run in list(self._tasks.items()):
            if run.task.scope not in scopes:
                continue
            if run.replay:
                self._start_task(key)
                continue
            self._retire(key, run)
            self.task_stale.emit(key)

    def _retire(self, key: str, run: TaskRun):
        """Make what ``key`` ran so far stale: a new ticket (returned), its job cancelled, its result dropped."""
        ticket = self.gens.next(f"task:{key}")
        if run.handle is not None and run.handle.running:
            run.handle.cancel()
        run.result = None
        return ticket
