"""The checkpoint a run wrote: Save… copies it elsewhere, "Use this model" makes it the current model.

Both go through the session: the save is the core task ``copy_checkpoint_task`` (atomic), and the
model is loaded on the normal model path (``session.load_model``), so every tab then shows the new
classes and re-opening the file later restores them.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from convviz.ui.finetune.results_view import ResultsView
from convviz.ui.finetune.task_keys import SAVE


class TrainedModel(QObject):
    """The trained checkpoint's path and what the results view says about it."""

    #: a one-line message for the panel (empty: clear the last one)
    message = Signal(str)

    def __init__(self, results: ResultsView, parent: QObject | None = None):
        super().__init__(parent)
        self.results = results
        self.session = None
        self.path: str | None = None  #: the checkpoint "Use this model" loads
        self._adopting: str | None = None  #: the checkpoint being loaded as the current model
        results.save_requested.connect(self.save)
        results.use_requested.connect(self.use)

    def bind(self, session) -> None:
        self.session = session
        session.model_loaded.connect(self._on_model_loaded)
        session.model_failed.connect(self._on_model_failed)
        session.task_ready.connect(self._on_ready)
        session.task_failed.connect(self._on_failed)

    def run_finished(self, outcome) -> None:
        """A run ended: its checkpoint is the one to save or use."""
        self.path = outcome.checkpoint

    def save(self, path: str) -> None:
        """Write the trained checkpoint to ``path`` atomically; it becomes the one to use."""
        if self.path is not None and self.session is not None:
            self.session.run_task(SAVE, "finetune.tasks:copy_checkpoint_task", source=self.path, target=path)

    def use(self) -> None:
        """Make the trained checkpoint the current model (the normal model path)."""
        if self.path is None or self.session is None:
            return
        self._adopting = self.path
        self.results.show_saved(self.path, "Loading as the current model… ")
        self.session.load_model(self.path)

    def _on_ready(self, key: str, path: str) -> None:
        if key == SAVE:
            self.path = path
            self.message.emit("")
            self.results.show_saved(path, "Saved. ")

    def _on_failed(self, key: str, message: str) -> None:
        if key == SAVE:
            self.message.emit(message)

    def _on_model_loaded(self, info) -> None:
        if self._adopting is not None and info.spec == self._adopting:
            self._adopting = None
            self.results.show_saved(self.path, "Now the current model in every tab. ")

    def _on_model_failed(self, message: str) -> None:
        if self._adopting is not None:
            self._adopting = None
            self.message.emit(message)
