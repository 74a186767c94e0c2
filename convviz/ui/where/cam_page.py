"""Step 1, localization: the Grad-CAM heat of one class over the photo, its box, opacity and layer."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QCompleter, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QSlider, QWidget,
)

from convviz.core.views.colormaps import lookup_table
from convviz.core.where.boxes import Box
from convviz.ui.where.canvas import PhotoCanvas
from convviz.ui.widgets.sections import text_label, vstack

#: How many of the model's top classes the list offers.
TOP_CLASSES = 10
SIDE_WIDTH = 220


def slider(lo: int, hi: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


def swatch(colour: str, text: str) -> str:
    """Rich text: a small block of CSS ``colour`` and ``text`` (already escaped) beside it."""
    return f"<span style='background-color: {colour};'>&nbsp;&nbsp;&nbsp;&nbsp;</span>&nbsp;{text}"


def css_rgb(rgb) -> str:
    return "rgb({},{},{})".format(*map(int, rgb))


def heat_legend() -> str:
    """Rich text: the heat's colours at no evidence, half the peak and the peak; grey outside the crop."""
    lut = lookup_table("viridis")
    parts = [swatch(css_rgb(lut[k]), text) for k, text in
             ((0, "no&nbsp;evidence"), (128, "half&nbsp;the&nbsp;peak"), (255, "peak"))]
    parts.append(swatch(css_rgb((40, 40, 40)), "outside&nbsp;the&nbsp;crop&nbsp;the&nbsp;model&nbsp;sees"))
    return " &nbsp; ".join(parts)


def page_layout(page: QWidget, side: QWidget, canvas: QWidget, *below: QWidget) -> None:
    """A step's layout: its controls on the left, the photo (stretching) with lines below it on the right."""
    layout = QHBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(side)
    layout.addLayout(vstack(None, (canvas, 1), *below), 1)


def side_column(*items) -> QWidget:
    """A step's controls: ``items`` top down in a column :data:`SIDE_WIDTH` wide, a stretch under them."""
    side = QWidget()
    side.setFixedWidth(SIDE_WIDTH)
    vstack(side, *items, None)
    return side


class CamPage(QWidget):
    """Class picker, layer, opacity and box threshold on the left; the photo under the heat on the right."""

    rerun = Signal()  #: the class, layer or box threshold changed: compute again

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.target = None  #: the class asked for: an index, a typed name, or None (the top class)
        self.result = None
        self._heat_key = None
        self.classes = QListWidget()
        self.classes.setMinimumHeight(90)
        self.classes.setMaximumHeight(self.classes.fontMetrics().lineSpacing() * (TOP_CLASSES + 1) + 8)
        self.classes.itemClicked.connect(self._on_item)
        self.entry = QLineEdit()
        self.entry.setPlaceholderText("e.g. tiger cat or 282, then Enter")
        self.entry.returnPressed.connect(self._on_typed)
        self.layer = QComboBox()
        self.layer.setMinimumContentsLength(12)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.currentIndexChanged.connect(lambda _i: self.rerun.emit())
        self.opacity_label = text_label()
        self.opacity = slider(0, 100, 60)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.threshold_label = text_label()
        self.threshold = slider(10, 90, 50)
        self.threshold.valueChanged.connect(self._on_threshold)
        side = side_column(text_label("<b>Class</b>: click one, or type a name or index"), self.classes, self.entry,
                           text_label("<b>Layer</b> weighed by the gradient"), self.layer,
                           self.opacity_label, self.opacity, self.threshold_label, self.threshold)
        self.canvas = PhotoCanvas()
        self.legend = QLabel(heat_legend())
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.caption = text_label()
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        page_layout(self, side, self.canvas, self.legend, self.caption)
        self._label_opacity()
        self._label_threshold()

    # ------------------------------------------------------------------ inputs
    def args(self) -> dict:
        return {"target": self.target, "layer": self.layer.currentData(), "threshold": self.threshold_value()}

    def threshold_value(self) -> float:
        return self.threshold.value() / 100

    def set_predictions(self, top) -> None:
        """The model's top classes for the photo (``{"label", "index", "prob"}``), best first."""
        self.classes.clear()
        for entry in list(top)[:TOP_CLASSES]:
            item = QListWidgetItem(f"{entry['prob'] * 100:5.1f} %  {entry['label']}")
            item.setData(Qt.ItemDataRole.UserRole, int(entry["index"]))
            item.setToolTip(f"class {entry['index']}: {entry['label']}")
            self.classes.addItem(item)
        self._mark_current()

    def set_layers(self, rows, conv_layers) -> None:
        """The default (last layer with spatial extent) first, then every convolution with a map, deepest first."""
        from convviz.core.where.gradcam import spatial_layers

        spatial = spatial_layers(rows)
        self.layer.blockSignals(True)
        self.layer.clear()
        if spatial:
            strides = {r.name: r.jump for r in rows if r.jump is not None}
            self.layer.addItem(f"{spatial[-1]} (default: last with a map)", None)
            for name in reversed([n for n in spatial if n in set(conv_layers) and n != spatial[-1]]):
                self.layer.addItem(f"{name} · stride {strides[name][0]:g}", name)
        self.layer.blockSignals(False)

    def set_class(self, index) -> None:
        """Ask for class ``index`` (None: the top class) and recompute."""
        self.target = index
        self.entry.clear()
        self._mark_current()
        self.rerun.emit()

    def reset_class(self) -> None:
        """A new photo or model: back to its top class (no recompute: the panel decides when)."""
        self.target = None
        self.entry.clear()
        self._mark_current()

    def _on_item(self, item: QListWidgetItem) -> None:
        self.set_class(item.data(Qt.ItemDataRole.UserRole))

    def _on_typed(self) -> None:
        text = self.entry.text().strip()
        if text:
            self.target = int(text) if text.isdigit() else text
            self._mark_current()
            self.rerun.emit()

    def set_labels(self, labels) -> None:
        """Every class name, for completing what the user types."""
        completer = QCompleter(list(labels), self.entry)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.entry.setCompleter(completer)

    def _mark_current(self) -> None:
        shown = self.result.index if self.result is not None else None
        wanted = self.target if isinstance(self.target, int) else shown
        for row in range(self.classes.count()):
            item = self.classes.item(row)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == wanted)

    # ----------------------------------------------------------------- results
    def show_result(self, result, photo) -> None:
        """Show a :class:`~convviz.core.where.gradcam.CamResult` over ``photo`` (view size)."""
        self.result = result
        self.canvas.set_photo(photo)
        self._heat_key = None
        self._on_opacity()
        self._on_threshold()
        if result.labels and self.entry.completer() is None:
            self.set_labels(result.labels)
        self._mark_current()

    def clear(self, message: str = "") -> None:
        self.result = None
        self.canvas.set_photo(None)
        self.caption.setText(message)

    def _on_opacity(self) -> None:
        self._label_opacity()
        if self.result is None:
            return
        from convviz.core.where.render import heat_rgba, seen_mask

        if self._heat_key is None:
            self._heat_key = seen_mask(self.result.frame, self.result.heat.shape)
        self.canvas.set_overlay(heat_rgba(self.result.heat, self.opacity.value() / 100, self._heat_key))

    def box(self):
        """The box drawn: the region above the slider's fraction of the peak (the core's rule, no recompute)."""
        from convviz.core.where.gradcam import peak_box

        r = self.result
        threshold = self.threshold_value()
        edges = r.box if threshold == r.threshold else peak_box(r.heat, threshold, r.frame.photo_hw, r.frame)
        return Box(*edges, r.index, r.label, r.prob)

    def _on_threshold(self) -> None:
        from convviz.core.where.render import BOX_COLOUR

        self._label_threshold()
        if self.result is None:
            return
        box = self.box()
        self.canvas.set_boxes([box], [BOX_COLOUR], self.result.frame.photo_hw)
        self.caption.setText(self.result.caption(self.threshold_value()))

    def _label_opacity(self) -> None:
        self.opacity_label.setText(f"Heat opacity: {self.opacity.value()} %")

    def _label_threshold(self) -> None:
        self.threshold_label.setText(f"Box around the region above {self.threshold.value()} % of the peak")
