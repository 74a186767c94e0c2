"""Section 3 of the Fine-tune tab: augmentation toggles with strengths, a live preview grid and the
"shift by one pixel" example."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QSlider, QWidget

from convviz.ui.finetune.thumbs import rgb_pixmap
from convviz.ui.widgets.sections import heading, vstack

#: field of AugmentSpec, label, largest strength, how the strength reads
CONTROLS = (
    ("hflip", "Horizontal flip", 1.0, "{:.0%} of images"),
    ("vflip", "Vertical flip", 1.0, "{:.0%} of images"),
    ("grayscale", "Grayscale", 1.0, "{:.0%} of images"),
    ("crop", "Random crop", 0.9, "up to {:.0%} cut away"),
    ("jitter", "Colour jitter", 1.0, "±{:.0%} brightness, contrast, saturation"),
    ("translate", "Translation", 0.5, "up to {:.0%} of the side"),
    ("rotate", "Rotation", 90.0, "up to ±{:.0f}°"),
)
STEPS = 100


class AugmentSection(QWidget):
    """Toggles + strengths → ``spec_changed(AugmentSpec)``; shows what the preview job returns."""

    spec_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from convviz.core.finetune.augment_spec import DEFAULT_STRENGTHS

        box, caption = heading("3 · Augmentation")
        caption.setText("Random changes that keep the label, drawn anew every epoch. Off: the fast path "
                        "(features are computed once and only the head trains).")
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self.checks: dict[str, QCheckBox] = {}
        self.sliders: dict[str, QSlider] = {}
        self.values: dict[str, QLabel] = {}
        for row, (name, label, top, fmt) in enumerate(CONTROLS):
            check, slider, value = QCheckBox(label), QSlider(Qt.Orientation.Horizontal), QLabel("")
            slider.setRange(1, STEPS)
            slider.setValue(max(1, round(DEFAULT_STRENGTHS[name] / top * STEPS)))
            slider.setEnabled(False)
            value.setStyleSheet("color: #555;")
            value.setMinimumWidth(150)
            check.toggled.connect(slider.setEnabled)
            check.toggled.connect(self._changed)
            slider.valueChanged.connect(self._changed)
            grid.addWidget(check, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            self.checks[name], self.sliders[name], self.values[name] = check, slider, value
        grid.setColumnStretch(1, 1)
        self.preview = QLabel("")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.preview_caption = QLabel("")
        self.preview_caption.setStyleSheet("color: #666;")
        self.preview_caption.setWordWrap(True)
        self.shift = QLabel("")
        self.shift.setWordWrap(True)
        vstack(self, box, grid, self.preview_caption, self.preview, self.shift)
        self._show_values()

    def strength(self, name: str) -> float:
        top = next(t for n, _l, t, _f in CONTROLS if n == name)
        return self.sliders[name].value() / STEPS * top

    def spec(self):
        from convviz.core.finetune import AugmentSpec

        return AugmentSpec(**{n: (self.strength(n) if self.checks[n].isChecked() else 0.0) for n, *_ in CONTROLS})

    def set_spec(self, **strengths: float) -> None:
        """Switch the named augmentations on at these strengths (others off)."""
        for name, *_rest in CONTROLS:
            value = strengths.get(name, 0.0)
            if value > 0:
                top = next(t for n, _l, t, _f in CONTROLS if n == name)
                self.sliders[name].setValue(max(1, round(value / top * STEPS)))
            self.checks[name].setChecked(value > 0)

    def _show_values(self) -> None:
        for name, _label, _top, fmt in CONTROLS:
            on = self.checks[name].isChecked()
            self.values[name].setText(fmt.format(self.strength(name)) if on else "off")

    def _changed(self, *_args) -> None:
        self._show_values()
        self.spec_changed.emit(self.spec())

    def show_preview(self, preview, label: str | None) -> None:
        """An :class:`~convviz.workers.finetune_jobs.AugmentPreview` of one training image."""
        self.preview.setPixmap(rgb_pixmap(preview.grid))  # tiled by the job, off the GUI thread
        spec = self.spec()
        what = ", ".join(spec.names()) if spec.active else "no augmentation: every epoch sees the same input"
        whose = "one training image" if label else "the current photo (choose a folder to see a training image)"
        self.preview_caption.setText(f"{len(preview.images)} epochs of {whose}: {what}")
        demo = preview.shift
        keep = f"the label is still <b>{label}</b>" if label else "the label does not change"
        self.shift.setText(
            f"<b>Shift by one pixel:</b> moving this {preview.input_size}×{preview.input_size} input one pixel right "
            f"changes {demo.changed_values:,} of {demo.total_values:,} numbers ({demo.changed_fraction:.0%}), by "
            f"{demo.mean_abs_change:.1f} on average (at most {demo.max_abs_change}); {keep}. "
            "To the network it is a different array — augmentation teaches it that such changes do not matter.")
