"""One training run of the Fine-tune tab: Train → the session's paced training task → its outcome.

The run shows its updates in the :class:`~convviz.ui.finetune.training_view.TrainingView` as they
arrive and releases the task after each one is painted (:mod:`.pacing`); Cancel stops it before it
starts or after the running batch. The panel checks that a run can start and says what it trains on.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from convviz.ui.finetune.pacing import TrainPacer
from convviz.ui.finetune.task_keys import TRAIN
from convviz.ui.finetune.training_view import TrainingView


class TrainingRun(QObject):
    """Runs the training task for ``owner`` (the tab whose visibility paces it) and draws it in ``view``."""

    #: a training update arrived (a core ``TrainProgress`` without its model)
    progress = Signal(object)
    #: the run ended: its :class:`~convviz.core.finetune.outcomes.TrainOutcome`
    finished = Signal(object)
    #: the run failed: its one-line message
    failed = Signal(str)

    def __init__(self, view: TrainingView, task_args: Callable[[], dict], owner: QWidget):
        super().__init__(owner)
        self.view = view
        self._task_args = task_args  #: the training task's arguments (scan, config, save_path) at submission
        self.session = None
        self.outcome = None  #: TrainOutcome of the last run
        self.pacer = TrainPacer(self._submit, lambda n: self.session.task_shown(TRAIN, n), self)
        view.cancel.clicked.connect(self.cancel)
        view.drawn.connect(self.pacer.painted)

    def bind(self, session) -> None:
        self.session = session
        session.task_progress.connect(self._on_progress)
        session.task_cancelled.connect(self._on_cancelled)
        session.task_ready.connect(self._on_ready)
        session.task_failed.connect(self._on_failed)

    @property
    def running(self) -> bool:
        """Train was clicked and the run has not ended (its task may not be submitted yet)."""
        return self.pacer.pending or (self.session is not None and self.session.task_running(TRAIN))

    def start(self, unit: str, points: int) -> None:
        """Clear the curves for ``points`` of ``unit``; the task starts once they are painted (see pacing)."""
        self.view.reset()
        self.view.expect(unit, points)  # already so, unless the settings changed while curves were shown
        self.view.set_running(True)
        self.view.show_message("Starting…")
        self.pacer.arm()

    def _submit(self) -> None:
        if self.session is None or self.session.runner.closed:
            self.view.set_running(False)
            return
        self.session.run_task(TRAIN, "finetune.tasks:train_task", paced=True, **self._task_args())

    def cancel(self) -> None:
        """Cancel before the task started, else stop it after the running batch (the best model is kept)."""
        if self.pacer.disarm():
            self.view.set_running(False)
            self.view.show_message("Cancelled before it started.")
        elif self.running:
            self.view.show_message("Cancelling: stopping after this batch…")
            self.view.cancel.setEnabled(False)
            self.session.cancel_task(TRAIN)

    def _on_progress(self, key: str, progress) -> None:
        if key != TRAIN:
            return
        if progress.partial is not None:  # a training update (the other steps only have text)
            redraws = self.view.show_update(progress.partial, progress.text)
            self.progress.emit(progress.partial)
            owner = self.parent()
            window = owner.window().windowHandle()
            self.pacer.update_arrived(redraws and owner.isVisible() and window is not None and window.isExposed())
        elif progress.text:
            self.view.show_message(progress.text)

    def _on_cancelled(self, key: str) -> None:
        if key == TRAIN:
            self.view.set_running(False)

    def _on_ready(self, key: str, outcome) -> None:
        if key == TRAIN:
            self.view.set_running(False)
            self.outcome = outcome
            self.view.show_done(outcome)
            self.finished.emit(outcome)

    def _on_failed(self, key: str, message: str) -> None:
        if key == TRAIN:
            self.view.set_running(False)
            self.view.show_message("Training stopped.")
            self.failed.emit(message)
