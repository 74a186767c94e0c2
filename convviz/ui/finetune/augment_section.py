"""Section 3 of the Fine-tune tab: augmentation toggles with strengths, the run's seed, a live preview
grid (epoch 1 exactly as training will draw it) and the "shift by one pixel" example."""
from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QWidget

from convviz.core.finetune.augment_spec import DEFAULT_STRENGTHS, AugmentSpec
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
SEED_MAX = 999_999


class AugmentSection(QWidget):
    """Toggles + strengths → ``spec_changed(AugmentSpec)``; shows what the preview job returns."""

    spec_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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
        self.seed = QSpinBox()
        self.seed.setRange(0, SEED_MAX)
        self.seed.setPrefix("seed ")
        self.seed.setToolTip("The run's random seed: augmentation draws, shuffling, the new head's start. "
                             "The preview shows what training draws with it; the checkpoint records it.")
        self.new_seed = QPushButton("New seed")
        self.new_seed.setToolTip("Draw another seed: other augmentations, other order")
        self.new_seed.clicked.connect(self._new_seed)
        self.seed.valueChanged.connect(self._changed)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed)
        seed_row.addWidget(self.new_seed)
        seed_row.addStretch(1)
        self.preview = QLabel("")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.preview_caption = QLabel("")
        self.preview_caption.setStyleSheet("color: #666;")
        self.preview_caption.setWordWrap(True)
        self.shown_preview = None  #: the AugmentPreview on screen
        self.shift = QLabel("")
        self.shift.setWordWrap(True)
        vstack(self, box, grid, seed_row, self.preview_caption, self.preview, self.shift)
        self._show_values()

    def strength(self, name: str) -> float:
        top = next(t for n, _l, t, _f in CONTROLS if n == name)
        return self.sliders[name].value() / STEPS * top

    def spec(self) -> AugmentSpec:
        return AugmentSpec(**{n: (self.strength(n) if self.checks[n].isChecked() else 0.0) for n, *_ in CONTROLS})

    def seed_value(self) -> int:
        """The seed training will use (``TrainConfig.seed``) and the preview draws with."""
        return self.seed.value()

    def _new_seed(self) -> None:
        drawn = random.randrange(SEED_MAX)  # 0 … SEED_MAX − 1, then skip the current seed
        self.seed.setValue(drawn + 1 if drawn >= self.seed.value() else drawn)

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
        """An :class:`~convviz.core.finetune.outcomes.AugmentPreview` (``label``: training image 1's class)."""
        self.shown_preview = preview
        self.preview.setPixmap(rgb_pixmap(preview.grid))  # tiled by the job, off the GUI thread
        spec = self.spec()
        n = len(preview.images)
        images = f"training image{'s 1–' if n > 1 else ' '}{n}"
        if not spec.active:
            whose = f"{images[:1].upper()}{images[1:]}" if preview.first_epoch else "The current photo"
            them = "them" if preview.first_epoch and n > 1 else "it"
            text = f"{whose} as the model sees {them}: no augmentation, every epoch the same input"
        elif preview.first_epoch:
            text = (f"Epoch 1 with seed {preview.seed}: {images}, exactly as training will draw "
                    f"{'them' if n > 1 else 'it'} (each epoch draws anew): {', '.join(spec.names())}")
        else:
            text = (f"{n} draws of the current photo with seed {preview.seed} (choose a folder to see what "
                    f"training will draw): {', '.join(spec.names())}")
        self.preview_caption.setText(text)
        demo = preview.shift
        keep = f"the label is still <b>{label}</b>" if label else "the label does not change"
        self.shift.setText(
            f"<b>Shift by one pixel:</b> moving this {preview.input_size}×{preview.input_size} input one pixel right "
            f"changes {demo.changed_values:,} of {demo.total_values:,} numbers ({demo.changed_fraction:.0%}), by "
            f"{demo.mean_abs_change:.1f} on average (at most {demo.max_abs_change}); {keep}. "
            "To the network it is a different array — augmentation teaches it that such changes do not matter.")
