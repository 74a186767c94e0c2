"""The Fine-tune tab: folder → what trains → augmentation → train → results → use the new model.

The panel only displays and forwards intent: every step is a core task of
:mod:`convviz.core.finetune.tasks` that the session runs by key (scan, preview, parameter count,
fast-path preparation, training, save); the session drops what went stale. Training works on the
session's copy of the current model (:mod:`.training_run`); "Use this model" loads the saved
checkpoint through the normal model path (:mod:`.trained_model`).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from convviz.core.finetune.tasks import PREVIEW_COUNT
from convviz.core.finetune.train_config import TrainConfig
from convviz.ui.finetune.augment_section import AugmentSection
from convviz.ui.finetune.data_section import DataSection
from convviz.ui.finetune.freeze_section import FreezeSection
from convviz.ui.finetune.layout import StepColumns, message_line
from convviz.ui.finetune.results_view import ResultsView
from convviz.ui.finetune.task_keys import FREEZE, PREPARE, PREVIEW, SCAN
from convviz.ui.finetune.trained_model import TrainedModel
from convviz.ui.finetune.training_run import TrainingRun
from convviz.ui.finetune.training_view import TrainingView
from convviz.ui.panel import Panel


class FinetunePanel(Panel):
    """Fine-tune the current model on a folder of images, in the background, and adopt the result."""

    #: module paths whose parameters the chosen strategy freezes (for the Layers tab to mark)
    frozen_layers_changed = Signal(list)
    #: a training update arrived (a core ``TrainProgress`` without its model)
    training_progress = Signal(object)
    #: a run ended: the :class:`~convviz.core.finetune.outcomes.TrainOutcome`
    training_finished = Signal(object)
    #: a one-line message was shown (errors and notices), for tests and the status bar
    message_shown = Signal(str)

    #: fast-path forward: use an exported ONNX graph only if one is cached already (the bundled model's shipped graph needs none)
    graph_mode = "cached"
    #: export the fast path's graph in the background once a folder is chosen (tests switch it off)
    prepare_in_background = True

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.report = None  #: ScanReport of the chosen folder
        self._announced: list[str] = []  #: frozen layers last told to the Layers tree
        self.save_path: str | None = None  #: where training writes (None: a new file in the data dir)
        self.frozen_layers: list[str] = []
        self.loader_workers: int | None = None  #: DataLoader decode processes (None: the core decides)
        self._scanning: str | None = None  #: the folder being scanned
        self._preview_label: str | None = None  #: the class of training image 1 in the preview

        self.message = message_line()
        self.data = DataSection()
        self.freeze = FreezeSection()
        self.augment = AugmentSection()
        self.training = TrainingView()
        self.training.follow(self.data)  # Train is enabled only once a folder is usable
        self.results = ResultsView()
        self.training_run = TrainingRun(self.training, self._training_args, self)  #: Train → task → outcome
        self.trained_model = TrainedModel(self.results, self)  #: its checkpoint: Save…, Use this model
        self.steps = StepColumns(self, self.message, [self.data, self.freeze, self.augment], [self.training, self.results])

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
        self.training_run.progress.connect(self.training_progress)
        self.training_run.failed.connect(self.show_message)
        for then in (self.trained_model.run_finished, self.results.show_outcome, self.training_finished):
            self.training_run.finished.connect(then)  # called in this order
        self.trained_model.message.connect(self.show_message)
        self.results.image_clicked.connect(self.open_image_requested)

    # ------------------------------------------------------------------ session
    def bind(self, session) -> None:
        super().bind(session)
        self.trained_model.bind(session)  # first: "Now the current model" is shown before the requests below
        self.training_run.bind(session)
        session.model_loaded.connect(self._on_model_loaded)
        session.image_loaded.connect(lambda _img: self.report is None and self.when_shown(self._request_preview))
        session.task_ready.connect(self._on_task_ready)
        session.task_failed.connect(self._on_task_failed)
        if session.model_info is not None:
            self._on_model_loaded(session.model_info)

    def _on_task_ready(self, key: str, result) -> None:
        handler = {SCAN: self._on_scanned, FREEZE: self._on_freeze_info,
                   PREVIEW: lambda preview: self.augment.show_preview(preview, self._preview_label)}.get(key)
        if handler is not None:
            handler(result)

    def _on_task_failed(self, key: str, message: str) -> None:
        if key == SCAN:
            self.data.show_failed(self._scanning, self.report)
            self.show_message(message)
        elif key == FREEZE:
            self.freeze.count.setText(message)
        elif key == PREVIEW:
            self.augment.preview_caption.setText(message)

    def show_message(self, text: str) -> None:
        """One line above the sections (empty: hidden)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if text:
            self.message_shown.emit(text)

    def _on_model_loaded(self, _info) -> None:
        self.when_shown(self._request_freeze_info)
        self.when_shown(self._request_preview)

    # ------------------------------------------------------------------ scan
    def scan_folder(self, folder: str) -> None:
        """Scan ``folder`` in the background; a folder that cannot be used leaves the previous one."""
        if self.session is None:
            return
        self._scanning = folder
        self.data.show_scanning(folder)
        self.session.run_task(SCAN, "finetune.tasks:scan_task", root=folder)

    def _on_scanned(self, report) -> None:
        self.report = report
        self.show_message("")
        self.data.show_report(report)
        self.training.show_message("Ready: press Train.")
        self._request_freeze_info()
        self._request_preview()
        if self.prepare_in_background and self.fast_path_kind() is None and not self.session.task_running(PREPARE):
            # once per model (the session drops the result when the model changes): the fast path's graph
            self.session.run_task(PREPARE, "finetune.tasks:prepare_task", config=self.config())

    def fast_path_kind(self) -> str | None:
        """The graph prepared for the current model's fast path (onnx, eager …), None if not (yet)."""
        return self.session.task_result(PREPARE) if self.session is not None else None

    # ------------------------------------------------------------------ freeze + preview
    def train_preprocess(self):
        """The model's preprocessing as training with these settings uses it (the core decides)."""
        from convviz.core.finetune.train_types import preprocess_for  # imports torch

        return preprocess_for(self.session.model_info.preprocess, self.config())

    def _request_freeze_info(self) -> None:
        if self.session is not None and self.session.model_info is not None:
            classes = len(self.report.scan.classes) if self.report is not None else 2
            self.session.run_task(FREEZE, "finetune.tasks:freeze_task", strategy=self.freeze.strategy(), num_classes=classes)

    def _on_freeze_info(self, info) -> None:
        self.freeze.show_info(info)
        self.training.set_devices(info.devices)
        self.frozen_layers = list(info.frozen_modules)
        shown = list(self.frozen_layers) if self.report is not None else []  # once the user is fine-tuning
        if shown != self._announced:
            self._announced = shown
            self.frozen_layers_changed.emit(shown)

    def _request_preview(self) -> None:
        if self.session is None or self.session.model_info is None:
            return
        if self.report is not None and self.report.scan.train:  # epoch 1 of training, as it will be drawn
            source = list(self.report.scan.train[:PREVIEW_COUNT])
            self._preview_label = self.report.scan.classes[source[0].label]
        elif self.session.image is not None:
            source, self._preview_label = self.session.image.rgb, None
        else:
            return
        self.session.run_task(PREVIEW, "finetune.tasks:preview_task", source=source, spec=self.augment.spec(),
                              preprocess=self.train_preprocess(), count=PREVIEW_COUNT, seed=self.augment.seed_value())

    # ------------------------------------------------------------------ training
    def config(self):
        """The core :class:`TrainConfig` the widgets describe."""
        return TrainConfig(freeze=self.freeze.strategy(), augment=self.augment.spec(), graph=self.graph_mode,
                           workers=self.loader_workers, seed=self.augment.seed_value(), **self.training.settings())

    def point_unit(self) -> str:
        """What one point of the curves is for the current settings: an epoch, or an L-BFGS iteration."""
        return self.config().unit

    def _expect_run(self) -> None:
        self.training.expect(self.point_unit(), self.config().resolved().epochs)

    @property
    def training_running(self) -> bool:
        """From the Train click until the run ends (its task may not be submitted yet)."""
        return self.training_run.running

    @property
    def outcome(self):
        """TrainOutcome of the last run (None before one ended)."""
        return self.training_run.outcome

    def start_training(self) -> None:
        """Train with the current settings on the scanned folder, in the background."""
        if self.session is None or self.training_running:
            return
        if self.report is None:
            self.show_message("Choose a folder of images first (one sub-folder per class).")
            return
        if self.session.model_info is None:
            self.show_message("No model is loaded yet.")
            return
        self.show_message("")
        self.training_run.start(self.point_unit(), self.config().resolved().epochs)

    def _training_args(self) -> dict:
        return dict(scan=self.report.scan, config=self.config(), save_path=self.save_path)

    def cancel_training(self) -> None:
        """Cancel the run (before it started, or after the running batch)."""
        self.training_run.cancel()

    # ------------------------------------------------------------------ the new model
    @property
    def model_path(self) -> str | None:
        """The checkpoint "Use this model" loads (the last run's, or where Save… copied it)."""
        return self.trained_model.path

    def save_model(self, path: str) -> None:
        """Write the trained checkpoint to ``path`` atomically; it becomes the one to use."""
        self.trained_model.save(path)

    def use_model(self) -> None:
        """Make the fine-tuned checkpoint the current model (the normal model path)."""
        self.trained_model.use()
