"""Step 2, detection two ways side by side: crop-and-classify windows, and the classifier made fully
convolutional, with both timings and their measured ratio."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSpinBox, QWidget

from convviz.core.where.boxes import palette
from convviz.ui.where.cam_page import slider
from convviz.ui.where.canvas import MAX_BOXES, PhotoCanvas
from convviz.ui.widgets.sections import hrow, text_label, vstack

DEFAULT_SIZE = 448


def box_colours(boxes):
    """One palette colour per class, in the order classes first appear (best box first)."""
    classes = list(dict.fromkeys(b.index for b in boxes))
    colours = palette(len(classes))
    return [colours[classes.index(b.index)] for b in boxes]


def ratio_text(windows, dense) -> str:
    """The measured ratio of the two methods' times, in one sentence."""
    ratio = windows.seconds / max(dense.seconds, 1e-9)
    return (f"<b>Crop and classify took {windows.seconds:.2f} s, the dense pass {dense.seconds:.2f} s: "
            f"{ratio:.1f}× as long.</b> Overlapping windows share most of their convolutions; the dense pass "
            "computes them once for the whole photo.")


class DetectPage(QWidget):
    """Threshold and dense input size on top; the two methods' boxes side by side; timings, ratio, captions."""

    rerun_dense = Signal()  #: the dense input size changed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.windows = self.dense = None
        self.photo = None
        self.threshold_label = QLabel()
        self.threshold = slider(10, 95, 50)
        self.threshold.valueChanged.connect(self._redraw)
        self.input_size = QSpinBox()
        self.input_size.setRange(224, 1024)
        self.input_size.setSingleStep(32)
        self.input_size.setValue(DEFAULT_SIZE)
        self.input_size.setSuffix(" px")
        self.input_size.setKeyboardTracking(False)
        self.input_size.setToolTip("The whole photo is resized to about this many pixels squared (aspect kept) for the dense pass")
        self.input_size.valueChanged.connect(lambda _v: self.rerun_dense.emit())
        controls = hrow(self.threshold_label, (self.threshold, 1), 12, "Dense input ≈", self.input_size, spacing=None)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        self.titles, self.canvases, self.times = [], [], []
        for column, title in enumerate(("<b>Crop and classify</b> (the R-CNN idea): every window classified on its own",
                                        "<b>Fully convolutional</b> (OverFeat / FCN): one pass, a score per window")):
            label, canvas, timing = text_label(title), PhotoCanvas(), text_label()
            grid.addWidget(label, 0, column)
            grid.addWidget(canvas, 1, column)
            grid.addWidget(timing, 2, column, Qt.AlignmentFlag.AlignTop)
            self.titles.append(label)
            self.canvases.append(canvas)
            self.times.append(timing)
        grid.setRowStretch(1, 1)
        self.ratio = text_label()
        self.caption = text_label(colour="#444")
        vstack(self, controls, (grid, 1), self.ratio, self.caption)
        self._label_threshold()

    def threshold_value(self) -> float:
        return self.threshold.value() / 100

    def dense_size(self) -> int:
        return int(self.input_size.value())

    def set_photo(self, photo) -> None:
        self.photo = photo

    def set_windows(self, result) -> None:
        self.windows = result
        self._redraw()

    def set_dense(self, result) -> None:
        self.dense = result
        self._redraw()

    def clear(self, which: str = "both", message: str = "") -> None:
        if which in ("both", "windows"):
            self.windows = None
            self.canvases[0].set_photo(None)
            self.times[0].setText(message)
        if which in ("both", "dense"):
            self.dense = None
            self.canvases[1].set_photo(None)
            self.times[1].setText(message)
        self._texts(self.boxes())

    def boxes(self):
        """(windows' boxes, dense boxes) at the current threshold; None where not computed."""
        from convviz.core.where import dense, windows

        t = self.threshold_value()
        return (windows.crop_boxes(self.windows, None, t) if self.windows is not None else None,
                dense.dense_boxes(self.dense, None, t) if self.dense is not None else None)

    def _redraw(self) -> None:
        self._label_threshold()
        both = self.boxes()
        for canvas, result, boxes in zip(self.canvases, (self.windows, self.dense), both):
            if result is None or self.photo is None:
                continue
            if canvas.rgb is not self.photo:
                canvas.set_photo(self.photo)
            canvas.set_boxes(boxes, box_colours(boxes[:MAX_BOXES]), self.photo_hw(result))
        self._texts(both)

    @staticmethod
    def photo_hw(result):
        return result.photo_hw if hasattr(result, "photo_hw") else result.frame.photo_hw

    def _texts(self, boxes) -> None:
        """The timings, ratio and captions; ``boxes``: :meth:`boxes` at the current threshold."""
        if self.windows is not None:
            self.times[0].setText(f"{len(self.windows.windows)} crops in {self.windows.seconds:.2f} s · "
                                  f"{self._count(boxes[0])}")
        if self.dense is not None:
            h, w = self.dense.shape
            self.times[1].setText(f"one pass, {h}×{w} window positions in {self.dense.seconds:.2f} s · "
                                  f"{self._count(boxes[1])}")
        both = self.windows is not None and self.dense is not None
        self.ratio.setText(ratio_text(self.windows, self.dense) if both else "")
        parts = [r.caption() for r in (self.dense, self.windows) if r is not None]
        self.caption.setText(" ".join(parts))

    @staticmethod
    def _count(boxes) -> str:
        shown = min(len(boxes), MAX_BOXES)
        more = f" (best {shown} drawn)" if len(boxes) > shown else ""
        return f"{len(boxes)} box{'es' if len(boxes) != 1 else ''} after NMS{more}"

    def _label_threshold(self) -> None:
        self.threshold_label.setText(f"Boxes where a class reaches {self.threshold.value()} %")
