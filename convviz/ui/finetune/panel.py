"""The Fine-tune tab: folder → what trains → augmentation → train → results → use the new model.

The panel only displays and forwards intent: every step is a job of
:mod:`convviz.workers.finetune_jobs` / :mod:`~convviz.workers.scan_jobs` on ``session.runner`` (scan, preview, parameter count,
training, save). Training works on a clean copy of the current model; "Use this model" loads the
saved checkpoint through the normal model path (``session.load_model``), so every tab then shows
the new classes, and re-opening the file later restores them.
"""
from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QBoxLayout, QFileDialog, QLabel, QVBoxLayout, QWidget

from convviz.ui.finetune.augment_section import AugmentSection
from convviz.ui.finetune.data_section import DataSection
from convviz.ui.finetune.freeze_section import FreezeSection
from convviz.ui.finetune.results_view import ResultsView
from convviz.ui.finetune.training_view import TrainingView
from convviz.ui.panel import Panel
from convviz.ui.widgets.reflow import Reflow
from convviz.ui.widgets.sections import rule
from convviz.workers import finetune_jobs as jobs
from convviz.workers import scan_jobs


#: a training job goes on once the plots have not been repainted for this long (pyqtgraph repaints an
#: update in 2-4 paints, a few ms apart: its axes follow the new range one paint later)
DRAW_SETTLE_MS = 12
#: the job starts once the running state (cleared curves) is painted, or after this long when nothing
#: repaints (e.g. a hidden window): a starting job competes for the GIL with that 15-35 ms paint
START_AFTER_PAINT_MS = 60

#: Below this width (of the tab's viewport) the steps stack in one column instead of two.
TWO_COLUMNS_MIN_WIDTH = 900


class FinetunePanel(Panel):
    """Fine-tune the current model on a folder of images, in the background, and adopt the result."""

    #: module paths whose parameters the chosen strategy freezes (for the Layers tab to mark)
    frozen_layers_changed = Signal(list)
    #: a training update arrived (a core ``TrainProgress`` without its model)
    training_progress = Signal(object)
    #: a run ended: the :class:`~convviz.workers.finetune_jobs.TrainOutcome`
    training_finished = Signal(object)
    #: a one-line message was shown (errors and notices), for tests and the status bar
    message_shown = Signal(str)

    #: fast-path forward: use a prepared TorchScript graph only if one is cached already
    graph_mode = "cached"
    #: export the fast path's graph in the background once a folder is chosen (tests switch it off)
    prepare_in_background = True

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.report = None  #: ScanReport of the chosen folder
        self._announced: list[str] = []  #: frozen layers last told to the Layers tree
        self._deferred: list = []  #: requests waiting for the tab to be shown (see _when_shown)
        self._prepared: dict[str, str] = {}  #: model spec → kind of fast-path graph prepared for it
        self.outcome = None  #: TrainOutcome of the last run
        self.model_path: str | None = None  #: the checkpoint "Use this model" loads
        self.save_path: str | None = None  #: where training writes (None: a new file in the data dir)
        self.frozen_layers: list[str] = []
        self.loader_workers: int | None = None  #: DataLoader decode processes (None: the core decides)
        self.train_handle = None
        self._gate = None  #: the running job's UpdateGate: it waits until an update is drawn
        self._updates = 0  #: training updates received from the running job
        self._drawing = False  #: an update's plots are waiting to be painted
        self._settle = QTimer(self)  #: restarted by every paint of the plots; when it fires, the job goes on
        self._settle.setSingleShot(True)
        self._settle.setInterval(DRAW_SETTLE_MS)
        self._settle.timeout.connect(self._release_job)
        self._start_timer = QTimer(self)  #: starts a pending training job (see start_training)
        self._start_timer.setSingleShot(True)
        self._start_timer.timeout.connect(self._submit_training)
        self._gen = {"preview": 0, "freeze": 0}
        self._adopting: str | None = None
        self._train_pending = False

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020; font-weight: 600;")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setVisible(False)
        self.data = DataSection()
        self.freeze = FreezeSection()
        self.augment = AugmentSection()
        self.training = TrainingView()
        self.training.follow(self.data)  # Train is enabled only once a folder is usable
        self.results = ResultsView()

        left = QVBoxLayout()
        for i, w in enumerate((self.data, self.freeze, self.augment)):
            if i:
                left.addWidget(rule())
            left.addWidget(w)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.training)
        right.addWidget(rule())
        right.addWidget(self.results)
        right.addStretch(1)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setMinimumWidth(360)
        left_box.setMaximumWidth(500)
        self._left_box = left_box
        self._divider = rule(vertical=True)
        self.columns = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.columns.setSpacing(14)
        self.columns.addWidget(left_box, 4)
        self.columns.addWidget(self._divider)
        self.columns.addLayout(right, 5)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(self.message)
        layout.addLayout(self.columns)
        self.reflow = Reflow(self, TWO_COLUMNS_MIN_WIDTH, self._reflow)

        self.data.folder_chosen.connect(self.scan_folder)
        self.freeze.strategy_changed.connect(lambda _s: self._request_freeze_info())
        self.augment.spec_changed.connect(lambda _s: self._request_preview())
        # the curves' x axis names what one point will be as the settings change, rather than when a
        # run starts: relabelling a plot re-lays it out (a 50-110 ms stall at the start, measured).
        # Curves of a finished run keep their own unit until the next run clears them.
        for changed in (self.freeze.strategy_changed, self.augment.spec_changed, self.training.epochs.valueChanged):
            changed.connect(lambda _s: self.training.has_curves() or self._expect_run())
        self._expect_run()
        self.training.train.clicked.connect(self.start_training)
        self.training.cancel.clicked.connect(self.cancel_training)
        self.training.drawn.connect(self._on_drawn)
        self.results.image_clicked.connect(self.open_image_requested)
        self.results.save_requested.connect(lambda: self.save_model())
        self.results.use_requested.connect(self.use_model)

    # ------------------------------------------------------------------ session
    def bind(self, session) -> None:
        super().bind(session)
        session.model_loaded.connect(self._on_model_loaded)
        session.model_failed.connect(self._on_model_failed)
        session.image_loaded.connect(lambda _img: self.report is None and self._when_shown(self._request_preview))
        if session.model_info is not None:
            self._on_model_loaded(session.model_info)

    def _reflow(self, narrow: bool) -> None:
        """Two columns when there is room, the steps one below the other on a small screen."""
        self.columns.setDirection(QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight)
        self._divider.setVisible(not narrow)
        self._left_box.setMaximumWidth(16777215 if narrow else 500)

    def is_ready(self) -> bool:
        return True

    def show_message(self, text: str) -> None:
        """One line above the sections (empty: hidden)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if text:
            self.message_shown.emit(text)

    def _on_model_loaded(self, info) -> None:
        if self._adopting is not None and info.spec == self._adopting:
            self._adopting = None
            self.results.show_saved(self.model_path, "Now the current model in every tab. ")
        self._when_shown(self._request_freeze_info)
        self._when_shown(self._request_preview)

    def _when_shown(self, request) -> None:
        """Run ``request`` now if the tab is on screen, else when it is next shown: a hidden tab
        copies no model and augments no picture while the user looks at the other panels."""
        if self.isVisible():
            request()
        elif request not in self._deferred:
            self._deferred.append(request)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            request()

    def _on_model_failed(self, message: str) -> None:
        if self._adopting is not None:
            self._adopting = None
            self.show_message(message)

    # ------------------------------------------------------------------ scan
    def scan_folder(self, folder: str) -> None:
        """Scan ``folder`` in the background; a folder that cannot be used leaves the previous one."""
        if self.session is None:
            return
        self.data.show_scanning(folder)
        handle = self.session.runner.submit(scan_jobs.scan_job, folder, name="Scanning images…")
        handle.finished.connect(self._on_scanned)
        handle.failed.connect(lambda message: self._on_scan_failed(folder, message))

    def _on_scanned(self, report) -> None:
        if report is None:
            return
        self.report = report
        self.show_message("")
        self.data.show_report(report)
        self.training.show_message("Ready: press Train.")
        self._request_freeze_info()
        self._request_preview()
        self._prepare_backbone()

    def _prepare_backbone(self) -> None:
        """Once per model: export the fast path's graph in the background, before Train is pressed."""
        info = self.session.model_info if self.session is not None else None
        if not self.prepare_in_background or info is None or info.spec in self._prepared:
            return
        self._prepared[info.spec] = "preparing"
        handle = self.session.runner.submit(jobs.prepare_backbone_job, self.session.engine, self.config(),
                                            name="Preparing the fast feature extractor (once)…")
        handle.finished.connect(lambda kind, spec=info.spec: self._prepared.__setitem__(spec, kind))
        handle.failed.connect(lambda _message, spec=info.spec: self._prepared.pop(spec, None))
        handle.cancelled.connect(lambda spec=info.spec: self._prepared.pop(spec, None))

    def fast_path_kind(self) -> str | None:
        """The graph prepared for the current model's fast path (onnx, prepared, eager), None if not (yet)."""
        info = self.session.model_info if self.session is not None else None
        kind = self._prepared.get(info.spec) if info is not None else None
        return None if kind == "preparing" else kind

    def _on_scan_failed(self, folder: str, message: str) -> None:
        self.data.show_failed(folder, self.report)
        self.show_message(message)

    # ------------------------------------------------------------------ freeze + preview
    def train_preprocess(self):
        """The model's preprocessing as training with these settings uses it (the core decides)."""
        from convviz.core.finetune import preprocess_for

        return preprocess_for(self.session.model_info.preprocess, self.config())

    def _request_freeze_info(self) -> None:
        if self.session is None or self.session.model_info is None:
            return
        self._gen["freeze"] += 1
        gen, strategy = self._gen["freeze"], self.freeze.strategy()
        classes = len(self.report.scan.classes) if self.report is not None else 2
        handle = self.session.runner.submit(jobs.freeze_job, self.session.engine, strategy, classes, name="Counting parameters…")
        handle.finished.connect(lambda info: gen == self._gen["freeze"] and self._on_freeze_info(info))
        handle.failed.connect(lambda message: gen == self._gen["freeze"] and self.freeze.count.setText(message))

    def _on_freeze_info(self, info) -> None:
        self.freeze.show_info(info)
        self.training.set_devices(info.devices)
        self.frozen_layers = list(info.frozen_modules)
        self._announce_frozen()

    def _announce_frozen(self) -> None:
        """Tell the Layers tree what the choice freezes, once the user is fine-tuning (a folder is chosen)."""
        shown = list(self.frozen_layers) if self.report is not None else []
        if shown != self._announced:
            self._announced = shown
            self.frozen_layers_changed.emit(shown)

    def _request_preview(self) -> None:
        if self.session is None or self.session.model_info is None:
            return
        if self.report is not None and self.report.scan.train:  # epoch 1 of training, as it will be drawn
            source = list(self.report.scan.train[:scan_jobs.PREVIEW_COUNT])
            label = self.report.scan.classes[source[0].label]
        elif self.session.image is not None:
            source, label = self.session.image.rgb, None
        else:
            return
        self._gen["preview"] += 1
        gen = self._gen["preview"]
        handle = self.session.runner.submit(scan_jobs.preview_job, source, self.augment.spec(), self.train_preprocess(),
                                            seed=self.augment.seed_value(), name="Augmenting the preview…")
        handle.finished.connect(lambda preview: gen == self._gen["preview"] and self.augment.show_preview(preview, label))
        handle.failed.connect(lambda message: gen == self._gen["preview"] and self.augment.preview_caption.setText(message))

    # ------------------------------------------------------------------ training
    def config(self):
        """The core :class:`TrainConfig` the widgets describe."""
        from convviz.core.finetune import TrainConfig

        return TrainConfig(freeze=self.freeze.strategy(), augment=self.augment.spec(), graph=self.graph_mode,
                           workers=self.loader_workers, seed=self.augment.seed_value(), **self.training.settings())

    def point_unit(self) -> str:
        """What one point of the curves is for the current settings: an epoch, or an L-BFGS iteration."""
        return self.config().unit

    def _expect_run(self) -> None:
        self.training.expect(self.point_unit(), self.config().resolved().epochs)

    @property
    def training_running(self) -> bool:
        return self._train_pending or (self.train_handle is not None and self.train_handle.running)

    def start_training(self) -> None:
        if self.session is None or self.training_running:
            return
        if self.report is None:
            self.show_message("Choose a folder of images first (one sub-folder per class).")
            return
        if self.session.model_info is None:
            self.show_message("No model is loaded yet.")
            return
        self.show_message("")
        self.training.reset()
        self._expect_run()  # already so, unless the settings changed while curves were shown
        self.training.set_running(True)
        self.training.show_message("Starting…")
        self._train_pending = True
        # the job starts once the cleared curves are painted (_on_drawn), or after a moment when nothing
        # repaints: a job starting during that paint (building its model copy in Python) shares the GIL
        # with it and stretched the click's turn past 50 ms (measured)
        self._start_timer.start(START_AFTER_PAINT_MS)

    def _submit_training(self) -> None:
        self._start_timer.stop()
        if not self._train_pending:  # cancelled before it started
            return
        self._train_pending = False
        if self.session is None or self.session.runner.closed:
            self.training.set_running(False)
            return
        self._gate, self._updates, self._drawing = jobs.UpdateGate(), 0, False
        handle = self.session.runner.submit(jobs.train_job, self.session.engine, self.report.scan, self.config(),
                                            self.save_path, self._gate, name="Fine-tuning…", graceful=True)
        self.train_handle = handle
        handle.progress.connect(self._on_progress)
        handle.finished.connect(self._on_trained)
        handle.failed.connect(self._on_train_failed)
        handle.done.connect(lambda: self.training.set_running(False))

    def cancel_training(self) -> None:
        if self._train_pending:
            self._train_pending = False
            self._start_timer.stop()
            self.training.set_running(False)
            self.training.show_message("Cancelled before it started.")
        elif self.training_running:
            self.training.show_message("Cancelling: stopping after this batch…")
            self.training.cancel.setEnabled(False)
            self.train_handle.cancel()

    def _on_progress(self, progress) -> None:
        if progress.partial is not None:  # a training update (the other steps only have text)
            self._updates += 1
            redraws = self.training.show_update(progress.partial, progress.text)
            self.training_progress.emit(progress.partial)
            window = self.window().windowHandle()
            self._drawing = redraws and self.isVisible() and window is not None and window.isExposed()
            if not self._drawing:  # nothing slow to draw (or nothing on screen): let the job go on
                QTimer.singleShot(0, self._release_job)
        elif progress.text:
            self.training.show_message(progress.text)

    def _on_drawn(self) -> None:
        """The plots were painted: once they stop repainting, the job may go on (see UpdateGate)."""
        if self._train_pending:  # the running state is on screen: start the job (after this paint pass)
            self._start_timer.start(0)
            return
        if self._drawing or self._settle.isActive():
            self._drawing = False
            self._settle.start()

    def _release_job(self) -> None:
        if self._gate is not None:
            self._gate.shown(self._updates)

    def _on_trained(self, outcome) -> None:
        self.outcome = outcome
        self.model_path = outcome.checkpoint
        self.training.progress.setValue(1000)
        self.training.eta.setText("")
        done = "Cancelled" if outcome.cancelled else "Done"
        self.training.show_message(f"{done} in {outcome.seconds:.1f} s: {outcome.accuracy:.1%} validation accuracy"
                                   if outcome.epochs_done else "Cancelled before the first epoch ended.")
        self.results.show_outcome(outcome)
        self.training_finished.emit(outcome)

    def _on_train_failed(self, message: str) -> None:
        self.training.show_message("Training stopped.")
        self.show_message(message)

    # ------------------------------------------------------------------ the new model
    def save_model(self, path: str | None = None) -> None:
        """Write the trained checkpoint to ``path`` (asks when None), atomically; it becomes the one to use."""
        if self.model_path is None or self.session is None:
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the fine-tuned model",
                                                  os.path.join(os.path.expanduser("~"), os.path.basename(self.model_path)),
                                                  "convviz checkpoint (*.pt)")
            if not path:
                return
        handle = self.session.runner.submit(jobs.copy_checkpoint_job, self.model_path, path, name="Saving the model…")
        handle.finished.connect(self._on_saved)
        handle.failed.connect(self.show_message)

    def _on_saved(self, path: str) -> None:
        self.model_path = path
        self.show_message("")
        self.results.show_saved(path, "Saved. ")

    def use_model(self) -> None:
        """Make the fine-tuned checkpoint the current model (the normal model path)."""
        if self.model_path is None or self.session is None:
            return
        self._adopting = self.model_path
        self.results.show_saved(self.model_path, "Loading as the current model… ")
        self.session.load_model(self.model_path)
