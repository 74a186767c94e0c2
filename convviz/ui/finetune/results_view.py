"""Section 5 of the Fine-tune tab: validation accuracy, per-class accuracy, the confusion matrix,
the misclassified images, and Save… / Use this model."""
from __future__ import annotations

import html
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from convviz.ui.finetune.thumbs import ThumbStrip
from convviz.ui.widgets.sections import heading, vstack


def cell_colour(count: int, row_total: int, diagonal: bool) -> QColor:
    """Green on the diagonal, red off it, stronger for a larger share of the row (opaque, on white)."""
    share = count / row_total if row_total else 0.0
    base = (46, 160, 67) if diagonal else (214, 39, 40)
    mix = (0.15 + 0.6 * share) if count else 0.0
    return QColor(*(round(255 + (c - 255) * mix) for c in base))


BACKBONE_WORDS = {"full": "full training loop", "eager": "head on cached features",
                  "onnx": "head on cached features, ONNX Runtime backbone"}


def matrix_html(classes: list[str], confusion: list[list[int]]) -> str:
    """The confusion matrix as a table: a row per true class, a column per predicted class."""
    head = "".join(f"<th>&nbsp;{html.escape(c)}&nbsp;</th>" for c in classes)
    rows = []
    for i, name in enumerate(classes):
        total = sum(confusion[i])
        cells = "".join(f"<td align='center' bgcolor='{cell_colour(n, total, i == j).name()}'>&nbsp;{n}&nbsp;</td>"
                        for j, n in enumerate(confusion[i]))
        rows.append(f"<tr><th align='right'>{html.escape(name)}&nbsp;</th>{cells}</tr>")
    return (f"<table cellspacing='0' cellpadding='4' style='border-collapse: collapse'>"
            f"<tr><td align='right'><small>true ↓ predicted →</small></td>{head}</tr>{''.join(rows)}</table>")


class ResultsView(QWidget):
    """What a finished run scored; click a misclassified image to open it in every tab."""

    image_clicked = Signal(str)
    save_requested = Signal(str)  #: the path the user chose for the trained checkpoint
    use_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        box, self.caption = heading("5 · Results")
        self.caption.setText("Appear when training ends (or is cancelled).")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.per_class = QLabel("")
        self.per_class.setWordWrap(True)
        self.confusion = QLabel("")
        self.confusion.setVisible(False)
        self.matrix: list[list[int]] = []
        self.confusion_caption = QLabel("Confusion matrix: rows are the true class, columns the predicted one.")
        self.confusion_caption.setStyleSheet("color: #666;")
        self.confusion_caption.setVisible(False)
        self.gallery_caption = QLabel("")
        self.gallery_caption.setStyleSheet("color: #666;")
        self.gallery = ThumbStrip(icon_side=80, captions=True)
        self.gallery.clicked_path.connect(self.image_clicked)
        self.gallery.setVisible(False)
        self.save = QPushButton("Save…")
        self.use = QPushButton("Use this model")
        self.use.setToolTip("Load the fine-tuned checkpoint as the current model: every tab then shows its classes")
        self.save.clicked.connect(self.ask_save_path)
        self.use.clicked.connect(self.use_requested)
        self.saved = QLabel("")
        self.saved_path: str | None = None  #: the checkpoint shown last
        self.saved.setWordWrap(True)
        self.saved.setStyleSheet("color: #555;")
        self.saved.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use)
        buttons.addWidget(self.save)
        buttons.addStretch(1)
        matrix_row = QHBoxLayout()
        matrix_row.addWidget(self.confusion, 0, Qt.AlignmentFlag.AlignTop)
        matrix_row.addSpacing(24)
        matrix_row.addWidget(self.per_class, 1, Qt.AlignmentFlag.AlignTop)
        vstack(self, box, self.summary, self.confusion_caption, matrix_row, self.gallery_caption, self.gallery, buttons,
               self.saved)
        self.set_model_available(False)

    def ask_save_path(self) -> None:
        """Ask where to save the trained checkpoint (``save_requested`` with the path, unless cancelled)."""
        suggested = os.path.basename(self.saved_path or "finetuned.pt")
        path, _ = QFileDialog.getSaveFileName(self, "Save the fine-tuned model", os.path.join(os.path.expanduser("~"), suggested),
                                              "convviz checkpoint (*.pt)")
        if path:
            self.save_requested.emit(path)

    def set_model_available(self, available: bool) -> None:
        self.save.setEnabled(available)
        self.use.setEnabled(available)

    def show_outcome(self, outcome) -> None:
        """A :class:`~convviz.core.finetune.outcomes.TrainOutcome`."""
        facts = outcome.facts
        if not facts.epochs_done:
            self.caption.setText("Cancelled before the first epoch ended: nothing was trained or saved.")
            self.set_model_available(False)
            return
        how = "cancelled — best epoch so far" if outcome.cancelled else "finished"
        kept = "" if facts.kept_epoch is None else " Kept (best validation accuracy): " + (
            "the warm-started head, fitted on un-augmented features before the epochs." if facts.kept_epoch == 0
            else f"the model after epoch {facts.kept_epoch}.")
        self.caption.setText(f"Training {how}: {facts.epochs_done} {facts.unit}{'' if facts.epochs_done == 1 else 's'} in {facts.seconds:.1f} s "
                             f"on {facts.train_images} images ({BACKBONE_WORDS.get(facts.backbone, facts.backbone)})." + kept)
        wrong = len(outcome.misclassified)
        self.summary.setText(f"<span style='font-size:15pt; font-weight:600'>{outcome.accuracy:.1%}</span> "
                             f"validation accuracy ({facts.val_images - wrong} of {facts.val_images} right, "
                             f"loss {outcome.loss:.3f})"
                             + ("<br><span style='color:#666'>Each photo is judged with its mirror image (their "
                                "predictions averaged), as the saved model predicts.</span>" if facts.mirror else "")
                             + (f"<br><span style='color:#666'>{html.escape(facts.reads)}</span>" if facts.reads else ""))
        rows = "".join(f"<tr><td>{html.escape(c)}</td><td align='right'>&nbsp;{a:.1%}</td></tr>"
                       for c, a in outcome.per_class_accuracy.items())
        self.per_class.setText(f"<b>Per class</b><table cellspacing='2'>{rows}</table>")
        self._show_matrix(outcome.classes, outcome.confusion)
        self.gallery_caption.setText(f"Misclassified: {wrong} image(s), most confident first — click one to open it"
                                     if wrong else "No validation image was misclassified.")
        self.gallery.setVisible(bool(wrong))
        self.gallery.set_items([(m.path, thumb, f"{m.predicted}\n{m.prob:.0%}",
                                 f"{os.path.basename(m.path)}: true {m.true}, predicted {m.predicted} ({m.prob:.0%})")
                                for m, thumb in outcome.gallery])
        self.set_model_available(outcome.checkpoint is not None)
        self.show_saved(outcome.checkpoint)

    def _show_matrix(self, classes: list[str], confusion: list[list[int]]) -> None:
        self.matrix = [list(row) for row in confusion]
        self.confusion.setText(matrix_html(classes, confusion))
        self.confusion.setVisible(True)
        self.confusion_caption.setVisible(True)

    def show_saved(self, path: str | None, note: str = "") -> None:
        self.saved_path = path
        self.saved.setText(f"{note}Checkpoint: {path}" if path else "")
