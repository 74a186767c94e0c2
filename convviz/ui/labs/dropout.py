"""Dropout lab: a seeded mask on a real map, train vs eval, for each of torch's dropouts.

Input, mask (white kept, black dropped) and output of one channel side by side; the
measured share dropped, the scale and the means are the view's, computed by torch's own
rule (element-wise or whole channels; AlphaDropout's a·x + b) over the whole layer. In
eval mode the output is the input.
"""
from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QButtonGroup, QComboBox, QHBoxLayout, QLabel, QRadioButton, QSlider, QSpinBox, QWidget

from convviz.core.labs.names import DROPOUT_KINDS, DROPOUT_TYPE_NAMES, INFERENCE_NOTE

from ..widgets.sections import text_label
from .base import LabWidget, is_map_shape
from .maps import DIVERGING, GRAY, MapGrid, fmt, robust_symmetric

P_STEPS = 20  #: the slider moves in steps of 1/20 = 0.05
#: what each of torch's dropouts drops, for the kind menu
KIND_LABELS = {"Dropout": "Dropout: single values", "Dropout1d": "Dropout1d: whole channels",
               "Dropout2d": "Dropout2d: whole channels", "AlphaDropout": "AlphaDropout (SELU): values",
               "FeatureAlphaDropout": "FeatureAlphaDropout (SELU): channels"}
ALPHA_KINDS = ("AlphaDropout", "FeatureAlphaDropout")


class DropoutLab(LabWidget):
    """Lab ``dropout``: p slider, seed, train/eval; mask, output, scale and measured means."""

    NAME = "dropout"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layer_p: float | None = None
        self.title = QLabel("Select any layer: dropout works on any map or vector.")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.p_slider = QSlider(Qt.Orientation.Horizontal)
        self.p_slider.setRange(0, P_STEPS)
        self.p_slider.setValue(P_STEPS // 2)
        self.p_slider.setToolTip("Dropout probability p: the chance that each value is set to 0 in training")
        self.p_slider.setMinimumWidth(160)
        self.p_label = QLabel("p = 0.50")
        self.p_label.setMinimumWidth(60)
        self.seed = QSpinBox()
        self.seed.setRange(0, 99_999)
        self.seed.setPrefix("seed ")
        self.seed.setToolTip("Random seed of the mask (the same seed draws the same mask)")
        self.train = QRadioButton("train")
        self.eval = QRadioButton("eval")
        self.train.setChecked(True)
        self.mode = QButtonGroup(self)
        self.mode.addButton(self.train)
        self.mode.addButton(self.eval)
        self.channel = QSpinBox()
        self.channel.setPrefix("channel ")
        self.kind = QComboBox()
        for kind in DROPOUT_KINDS:
            self.kind.addItem(KIND_LABELS[kind], kind)
        self.kind.setToolTip("Which of torch's dropouts (a Dropout layer starts with its own)")
        kinds = QHBoxLayout()
        kinds.addWidget(QLabel("which dropout"))
        kinds.addWidget(self.kind)
        kinds.addStretch(1)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("p"))
        controls.addWidget(self.p_slider, 1)
        controls.addWidget(self.p_label)
        for w in (self.seed, self.train, self.eval, self.channel):
            controls.addWidget(w)
        self.p_slider.valueChanged.connect(self._p_moved)
        self.seed.valueChanged.connect(lambda _v: self.request())
        self.train.toggled.connect(lambda _v: self.request())
        self.channel.valueChanged.connect(lambda _v: self.request())
        self.kind.currentIndexChanged.connect(lambda _v: self.request())

        self.grid = MapGrid()
        self.grid.setMinimumHeight(220)
        self.inp = self.grid.add_map("input", "input", 0, 0)
        self.mask = self.grid.add_map("mask", "mask", 0, 1)
        self.out = self.grid.add_map("output", "output", 0, 2)
        self.grid.hovered.connect(self._hovered)
        self.stats = text_label(rich=True)
        self.layer_note = text_label(colour="#666")
        self.lay_out(controls, kinds, (self.grid, 1), self.hover, self.stats, self.layer_note)

    # ---- lab API ---------------------------------------------------------------------
    def not_applicable(self) -> str:
        return "the dropout lab needs a map or a vector"

    @property
    def p(self) -> float:
        return self.p_slider.value() / P_STEPS

    def args(self) -> dict:
        return {"p": self.p, "seed": self.seed.value(), "train": self.train.isChecked(),
                "channel": self.channel.value(), "dropout": self.kind.currentData()}

    def set_layer(self, name: str, row, module_type: str | None = None) -> None:
        shape = getattr(row, "out_shape", None)
        channels = shape[0] if is_map_shape(shape) else 1
        self.channel.blockSignals(True)
        self.channel.setRange(0, max(0, channels - 1))
        self.channel.setSuffix(f" of {channels}")
        self.channel.blockSignals(False)
        kind = module_type or getattr(row, "type", "")
        is_dropout = kind in DROPOUT_TYPE_NAMES
        if kind in DROPOUT_KINDS:  # a Dropout layer: show its own kind
            self.kind.blockSignals(True)
            self.kind.setCurrentIndex(DROPOUT_KINDS.index(kind))
            self.kind.blockSignals(False)
        self.layer_note.setText(f"{name} is a {kind} layer. {INFERENCE_NOTE}" if is_dropout
                                else f"{name} is not a Dropout layer: this shows what dropout would do to its output.")
        super().set_layer(name, row, module_type)

    def set_p(self, p: float) -> None:
        """Set the probability (rounded to the slider's 0.05 steps); one request."""
        self.p_slider.setValue(int(round(float(p) * P_STEPS)))

    def set_train(self, train: bool) -> None:
        (self.train if train else self.eval).setChecked(True)

    def _p_moved(self, _value: int) -> None:
        self.p_label.setText(f"p = {self.p:.2f}")
        self.request()

    # ---- drawing ---------------------------------------------------------------------
    def render(self, d) -> None:
        mode = "train" if d.train else "eval"
        self.title.setText(f"{d.layer}: {d.kind}, p = {d.p:g}, {mode} mode, seed {d.seed}")
        levels = robust_symmetric(np.concatenate([d.input_map.ravel(), d.output_map.ravel()]))
        self.inp.set_map(d.input_map, levels, DIVERGING)
        self.out.set_map(d.output_map, levels, DIVERGING)
        self.mask.set_map(d.mask_map.astype(np.float32), (0.0, 1.0), GRAY)
        kept = float(d.mask_map.mean())
        self.inp.set_title(f"input, channel {d.channel}")
        if d.channelwise and d.train and 0 < d.p:
            self.mask.set_title(f"mask: channel {d.channel} {'kept' if kept else 'dropped'} whole")
        else:
            self.mask.set_title(f"mask: {100 * (1 - kept):.1f}% dropped (black)")
        self.out.set_title("output = input (identity)" if d.identity else f"output: {_rule(d)}")
        values = int(np.prod(d.shape))
        dropped = f"<b>{100 * d.dropped_share:.1f}%</b>"
        if d.channelwise and d.train:
            dropped = f"<b>{d.channels_dropped} of {d.shape[0]} channels</b> ({100 * d.dropped_share:.1f}% of the values)"
        identity = "<b>Output = input exactly (identity).</b> " if d.identity else ""
        expected = f" (expected {d.expected_mean:.5f})" if d.train and d.expected_mean != d.mean_before else ""
        self.stats.setText(
            f"{identity}Whole layer ({values:,} values): dropped {dropped}"
            f"{f' (p = {100 * d.p:.0f}% expected)' if d.train else ''} · {_scale(d)} · "
            f"mean before <b>{d.mean_before:.5f}</b> → after <b>{d.mean_after:.5f}</b>{expected}<br>"
            f"<span style='color:#555'>{html.escape(d.text)} Colour scale ±{fmt(levels[1])}, white = 0.</span>")

    def _hovered(self, found) -> None:
        if self.hovered_cell(found) is None:
            return
        d = self.data
        _, r, c = found
        state = "kept" if d.mask_map[r, c] else "dropped"
        self.hover.setText(f"({r}, {c}): {fmt(d.input_map[r, c])} → {state} → {fmt(d.output_map[r, c])}")
        self.hover_unit((r, c) if d.input_map.shape[0] > 1 else None)


def _rule(d) -> str:
    """What happens to the values, in a map title."""
    if d.train and d.p >= 1:
        return "all zeros (p = 1)"
    if d.kind in ALPHA_KINDS:
        return f"a·x + b, dropped → {fmt(d.dropped_value)}"
    return f"survivors × {fmt(d.scale)}"


def _scale(d) -> str:
    """The scale the view applied, with its formula."""
    if not d.train:
        return "scale <b>1 (eval: no scaling)</b>"
    if d.p >= 1:
        return "scale <b>none: torch returns zeros</b>"
    if d.kind in ALPHA_KINDS:
        return (f"kept values <b>a·x + b</b> (a = {fmt(d.scale)}, b = {fmt(d.shift)}), dropped values "
                f"<b>{fmt(d.dropped_value)}</b>, no 1/(1−p)")
    return f"scale <b>1/(1−p) = 1/{1 - d.p:g} = {fmt(d.scale)}</b>"
