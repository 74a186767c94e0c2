"""The "Where it looks" tab: classification → localization → detection → segmentation with the
classifier the user has loaded, on their photo.

Each step is a core task (:mod:`convviz.core.where`) the session runs by key: Grad-CAM, the dense
(fully convolutional) pass, crop-and-classify windows. A task runs when its step is on screen and
its result is missing or stale (a new photo or model), so a hidden tab starts no work. Boxes,
thresholds, opacity and the segmentation's class picks are redrawn from the results in hand.
"""
from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QProgressBar, QPushButton, QStackedWidget, QTabBar, QWidget

from convviz.ui.panel import Panel
from convviz.ui.where.cam_page import CamPage
from convviz.ui.where.detect_page import DetectPage
from convviz.ui.where.segment_page import SegmentPage
from convviz.ui.widgets.save import save_png
from convviz.ui.widgets.sections import hrow, text_label, vstack

CAM, DENSE, WINDOWS, TOP = "where.cam", "where.dense", "where.windows", "where.top"
TASKS = {CAM: "where.gradcam:gradcam_task", DENSE: "where.dense:dense_task", WINDOWS: "where.windows:windows_task"}
STEPS = ("cam", "detect", "segment")
NEEDS = {"cam": (CAM,), "detect": (WINDOWS, DENSE), "segment": (DENSE,)}
TITLES = ("1 · Localization", "2 · Detection", "3 · Segmentation")
INTROS = (
    "A classifier gives one label. Grad-CAM asks where its evidence for a class lies: the gradient of the class "
    "score weighs each channel of a layer, and the weighted sum (ReLU'd) is drawn over the photo.",
    "Every object: classify many crops (left), or turn the classifier's head into a 1×1 convolution and score "
    "every window of the whole photo in one pass (right). Overlapping boxes of a class are merged (NMS).",
    "A label for every pixel: the dense class maps from step 2, resampled to the photo and coloured by the "
    "winning class among those ticked.",
)


class WherePanel(Panel):
    """Steps in a tab bar, one page each; progress, cancel and export above them."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.results: dict = {CAM: None, DENSE: None, WINDOWS: None}
        self.dirty: set[str] = set(TASKS)
        self.running: set[str] = set()
        self.failures: dict[str, str] = {}
        self.photo = None  #: the photo at the results' view size
        self.steps = QTabBar()
        for title in TITLES:
            self.steps.addTab(title)
        self.steps.setExpanding(False)
        self.steps.currentChanged.connect(self._on_step)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(False)
        self.status = text_label()
        self.run_button = QPushButton("Cancel")
        self.run_button.clicked.connect(self._on_run_button)
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setToolTip("Save this step's picture with a legend and its caption")
        self.export_button.clicked.connect(lambda: self.export_png())
        top = hrow(self.steps, (self.status, 1), self.progress, self.run_button, self.export_button, spacing=None)
        self.intro = text_label(INTROS[0], colour="#444")
        self.cam, self.detect, self.segment = CamPage(), DetectPage(), SegmentPage()
        self.pages = QStackedWidget()
        for page in (self.cam, self.detect, self.segment):
            self.pages.addWidget(page)
        self.cam.rerun.connect(lambda: self._run(CAM))
        self.detect.rerun_dense.connect(lambda: self._run(DENSE))
        vstack(self, top, self.intro, (self.pages, 1), margins=6)
        self._show_busy()

    # ------------------------------------------------------------------ wiring
    def bind(self, session) -> None:
        super().bind(session)
        session.task_ready.connect(self._on_ready)
        session.task_failed.connect(self._on_failed)
        session.task_cancelled.connect(self._on_cancelled)
        session.task_stale.connect(self._on_stale)
        session.task_progress.connect(self._on_progress)
        session.view_ready.connect(lambda key, data: key == TOP and self.cam.set_predictions(data.top))
        session.image_loaded.connect(self._on_image)
        session.model_loaded.connect(self._on_model)
        self.view_while_shown(TOP, "predictions", k=10)  # the class list: only while the tab is on screen

    def watch_predictions(self, predictions) -> None:
        """A click on a class in the window's predictions chart asks for its Grad-CAM here."""
        def clicked(event) -> None:
            view = predictions.getPlotItem().getViewBox()
            row = round(view.mapSceneToView(event.scenePos()).y())
            if 0 <= row < len(predictions.predictions):
                self.pick_class(int(predictions.predictions[row]["index"]))

        predictions.scene().sigMouseClicked.connect(clicked)

    def pick_class(self, index: int) -> None:
        """Show the Grad-CAM of class ``index`` (step 1)."""
        self.steps.setCurrentIndex(0)
        self.cam.set_class(index)

    def show_step(self, name: str) -> None:
        """Show step ``name`` (``cam``, ``detect`` or ``segment``)."""
        self.steps.setCurrentIndex(STEPS.index(name))

    def step(self) -> str:
        return STEPS[self.steps.currentIndex()]

    def is_ready(self) -> bool:
        return all(self.results[key] is not None or key in self.failures for key in NEEDS[self.step()])

    # ------------------------------------------------------------------ running
    def _on_step(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        self.intro.setText(INTROS[index])
        self.when_shown(self._refresh)
        self._show_busy()

    def _refresh(self) -> None:
        """Run what the step on screen needs and does not have (the tab is visible)."""
        if self.session is None or not self.session.ready:
            return
        for key in NEEDS[self.step()]:
            if key in self.dirty and key not in self.running:
                self._run(key)

    def _run(self, key: str) -> None:
        if self.session is None:
            return
        if not self.isVisible() or key not in NEEDS[self.step()]:
            self.dirty.add(key)
            self.when_shown(self._refresh)
            return
        args = {CAM: self.cam.args, DENSE: lambda: {"size": self.detect.dense_size()}, WINDOWS: dict}[key]()
        self.dirty.discard(key)
        self.failures.pop(key, None)
        self.running.add(key)
        self.session.run_task(key, TASKS[key], **args)
        self._show_busy()

    def cancel(self) -> None:
        """Stop every running step (each stops between batches); what is done stays shown."""
        for key in list(self.running):
            self.session.cancel_task(key)

    def _on_run_button(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.dirty.update(NEEDS[self.step()])
            self._refresh()

    # ------------------------------------------------------------------ results
    def _on_ready(self, key: str, result) -> None:
        if key not in TASKS:
            return
        self.running.discard(key)
        self.results[key] = result
        if key == CAM:
            self.cam.show_result(result, self._photo())
        elif key == DENSE:
            for page in (self.detect, self.segment):
                page.set_photo(self._photo())
                page.set_dense(result)
            self.cam.set_labels(result.labels)
        else:
            self.detect.set_photo(self._photo())
            self.detect.set_windows(result)
        self._show_busy()
        if self.is_ready():
            self.ready.emit()

    def _on_failed(self, key: str, message: str) -> None:
        if key not in TASKS:
            return
        self.running.discard(key)
        self.failures[key] = message
        self.results[key] = None
        {CAM: lambda: self.cam.clear(message), DENSE: lambda: (self.detect.clear("dense", message),
                                                               self.segment.clear(message)),
         WINDOWS: lambda: self.detect.clear("windows", message)}[key]()
        self._show_busy(message)
        if self.is_ready():
            self.ready.emit()

    def _on_cancelled(self, key: str) -> None:
        if key in TASKS:
            self.running.discard(key)
            self.dirty.add(key)
            self._show_busy("Stopped. Press Run to compute this step again.")

    def _on_stale(self, key: str) -> None:
        """The photo or model changed under a running step; ``_on_image`` / ``_on_model`` recompute."""
        if key in TASKS:
            self.running.discard(key)
            self.results[key] = None
            self.dirty.add(key)

    def _on_progress(self, key: str, progress) -> None:
        if key in self.running:
            if progress.fraction is not None:
                self.progress.setValue(round(100 * progress.fraction))
            self.status.setText(progress.text)

    def _on_image(self, image) -> None:
        self.photo = None
        self.cam.reset_class()
        self._invalidate()

    def _on_model(self, info) -> None:
        self.cam.set_layers(info.rows, info.conv_layers)
        self.cam.reset_class()
        self.cam.entry.setCompleter(None)
        self._invalidate()

    def _invalidate(self) -> None:
        """A new photo or model: every result is stale; the step on screen recomputes."""
        for key in TASKS:
            self.results[key] = None
        self.failures.clear()
        self.dirty.update(set(TASKS) - self.running)
        self.cam.clear()
        self.detect.clear()
        self.segment.clear()
        self.when_shown(self._refresh)

    def _photo(self):
        if self.photo is None and self.session is not None and self.session.image is not None:
            from convviz.core.where.render import view_photo

            self.photo = view_photo(self.session.image.rgb)
        return self.photo

    def _show_busy(self, message: str | None = None) -> None:
        busy = bool(self.running)
        self.progress.setVisible(busy)
        self.run_button.setText("Cancel" if busy else "Run again")
        self.run_button.setToolTip("Stop this step's computation" if busy else "Compute this step again")
        if not busy:
            self.progress.setValue(0)
            self.status.setText(message or "")
        self.export_button.setEnabled(self.is_ready() and not busy)

    # ------------------------------------------------------------------ export
    def picture(self):
        """This step's picture with its legend and caption (RGB uint8), None before its results are in."""
        from convviz.core.where import render

        rgb = self.session.image.rgb if self.session is not None and self.session.image is not None else None
        step = self.step()
        if rgb is None or any(self.results[k] is None for k in NEEDS[step]):
            return None
        if step == "cam":
            cam = self.results[CAM]
            return render.cam_picture(rgb, cam, self.cam.opacity.value() / 100, self.cam.box(),
                                      cam.caption(self.cam.threshold_value()))
        if step == "detect":
            windows_boxes, dense_boxes = self.detect.boxes()
            w, d = self.results[WINDOWS], self.results[DENSE]
            ratio = w.seconds / max(d.seconds, 1e-9)
            return render.side_by_side(
                render.boxes_picture(rgb, windows_boxes, f"Crop and classify: {w.caption()}"),
                render.boxes_picture(rgb, dense_boxes, f"Fully convolutional: {d.caption()} Crop and classify took "
                                                       f"{ratio:.1f}× as long as this pass."))
        from convviz.core.where.dense import coarseness_text

        return render.segment_picture(rgb, self.segment.segmentation, coarseness_text(self.results[DENSE]),
                                      self.segment.opacity.value() / 100)

    def export_png(self, path: str | None = None) -> bool:
        """Save :meth:`picture` as a PNG (asks where when ``path`` is None); False when nothing was written."""
        picture = self.picture()
        if picture is None:
            self.status.setText("Nothing to export yet: this step's results are not in.")
            return False
        if path is None:
            path = QFileDialog.getSaveFileName(self, "Export PNG", f"where-{self.step()}.png", "PNG (*.png)")[0]
        if not path:
            return False
        problem = save_png(picture, path)
        self.status.setText(problem or f"Saved {path}")
        return not problem

    def shortcuts(self) -> list[tuple[str, str]]:
        return [("click a class", "in the predictions chart: its Grad-CAM in step 1")]

