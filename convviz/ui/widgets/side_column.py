"""The left column of the window: the photo (with the model's crop and receptive-field box),
the top-5 predictions and the model card. It shrinks with the window and can be collapsed."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from convviz.core.capture.unit_field import field_sentence, unit_field

from .image_view import PhotoView, field_rect
from .predictions_view import PredictionsView
from .sections import heading, model_card_text

PHOTO_HINT = "Open an image: File ▸ Open, drag one here, or paste (Ctrl+V)"
ENLARGED_NOTE_AT = 2.0  #: say how enlarged the model sees a photo from this factor on


class SideColumn(QWidget):
    """Photo, predictions and model card; every caption describes what is shown now."""

    #: longest a new photo's repaint waits for the first view of it (see :meth:`hold_repaint`), ms
    hold_ms = 150

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._held = False
        self._hold_timer = QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.timeout.connect(self.release_repaint)
        self.photo = PhotoView()
        self.photo.setMinimumSize(160, 120)
        self.predictions = PredictionsView()
        self.predictions.setMinimumHeight(120)
        self.predictions.setMaximumHeight(220)
        self.predictions.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        photo_head, self.photo_caption = heading("Photo")
        pred_head, self.pred_caption = heading("Top-5 predictions")
        model_head, self.model_caption = heading("Model")
        self.photo_text = PHOTO_HINT
        self._photo_name, self._photo_size, self._preprocess = "", None, None
        self.photo_caption.setText(self.photo_text)
        self.pred_caption.setText("waiting for the model…")
        self.pred_title = ""
        self.model_card = QLabel("Loading the model in the background…")
        self.model_card.setWordWrap(True)
        self.model_card.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_card.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMinimumWidth(220)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 8, 10)
        layout.setSpacing(6)
        layout.addWidget(photo_head)
        layout.addWidget(self.photo, 3)
        layout.addWidget(pred_head)
        layout.addWidget(self.predictions, 2)
        layout.addWidget(model_head)
        layout.addWidget(self.model_card)
        layout.addStretch(0)

    # ---- repaint -----------------------------------------------------------------
    def hold_repaint(self) -> None:
        """Paint nothing until :meth:`release_repaint` (or :attr:`hold_ms`): a new photo and its
        stale predictions are painted right after the photo's first maps, not during the forward
        pass, which the paint (pyqtgraph, under the GIL) would slow by ~4 ms (bench_layers)."""
        self._held = True
        self.setUpdatesEnabled(False)
        self._hold_timer.start(self.hold_ms)

    def release_repaint(self) -> None:
        """Repaint once the events already queued (the result just delivered, its paint) are done."""
        self._hold_timer.stop()
        if self._held:
            self._held = False
            QTimer.singleShot(0, self._paint_again)

    def _paint_again(self) -> None:
        if not self._held:
            self.setUpdatesEnabled(True)

    # ---- photo -------------------------------------------------------------------
    def set_image(self, image) -> None:
        self.photo.set_image(image.rgb)
        self._photo_name, self._photo_size = image.name, image.size
        self._update_photo_text()
        self.show_field(None)

    def _update_photo_text(self) -> None:
        """Name, size and what the model sees; a photo much smaller than the model's input says how enlarged."""
        if self._photo_size is None:
            return
        width, height = self._photo_size
        text = f"{self._photo_name} · {width}×{height} px\nThe bright square is what the model sees."
        p = self._preprocess
        zoom = p.input_size / (min(width, height) * p.crop_pct) if p is not None else 1.0
        if zoom >= ENLARGED_NOTE_AT:
            text += (f"\nMuch smaller than the model's {p.input_size}×{p.input_size} input: it sees this photo "
                     f"enlarged {zoom:.3g}×, so fine detail is the resize's guess.")
        self.photo_text = text

    def show_field(self, unit, info=None, image=None) -> None:
        """Draw the receptive field of ``unit`` = (layer, row, col) on the photo; None hides it."""
        row = info.row(unit[0]) if unit and info is not None else None
        if row is None or row.rf is None or image is None:
            self.photo.clear_field()
            self.photo_caption.setText(self.photo_text)
            return
        name, out_row, out_col = unit
        p = info.preprocess
        rect = field_rect(row, out_row, out_col, p, *image.size)
        rf_h, rf_w = (int(round(v)) for v in row.rf)
        self.photo.show_field(rect, f"RF {rf_h}×{rf_w}")
        field = unit_field(row, out_row, out_col, (p.input_size, p.input_size))  # the table's input size
        self.photo_caption.setText(f"{name}, unit ({out_row}, {out_col})\n{field_sentence(field)}")

    # ---- predictions and model -----------------------------------------------------
    def set_model(self, info) -> None:
        self.photo.set_preprocess(info.preprocess)
        self._preprocess = info.preprocess
        self._update_photo_text()
        self.model_caption.setText(info.spec)
        self.model_card.setText(model_card_text(info))
        random = "random weights" in info.note
        self.pred_title = f"{info.title}: untrained, so these classes mean nothing" if random else info.title
        self.pred_caption.setText(f"{self.pred_title} (updating…)")
        self.show_field(None)

    def set_predictions(self, top) -> None:
        self.predictions.set_predictions(list(top))
        self.pred_caption.setText(self.pred_title)

    def predictions_stale(self) -> None:
        if self.pred_title:
            self.pred_caption.setText(f"{self.pred_title} (updating…)")

    def predictions_failed(self, message: str) -> None:
        self.predictions.set_predictions([])
        self.pred_caption.setText(f"No predictions: {message}")
