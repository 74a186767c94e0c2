"""Section 2 of the Fine-tune tab: which layers train, with the trainable-parameter count."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QRadioButton, QSpinBox, QWidget

from convviz.ui.widgets.sections import heading, vstack

RULE_OF_THUMB = ("Rule of thumb: the more your images differ from ImageNet photos, and the more of them you "
                 "have, the more layers to unfreeze. A few hundred everyday photos: head only.")


class FreezeSection(QWidget):
    """Head only / last N blocks too / everything; ``strategy()`` is the core's ``head|last:N|none``."""

    strategy_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        box, caption = heading("2 · What trains")
        caption.setText(RULE_OF_THUMB)
        self.head = QRadioButton("Head only: the network is a fixed feature extractor")
        self.last = QRadioButton("The head and the last")
        self.blocks = QSpinBox()
        self.blocks.setRange(1, 16)
        self.blocks.setValue(2)
        self.blocks.setSuffix(" blocks")
        self.all = QRadioButton("Everything (every layer trains)")
        self.head.setChecked(True)
        self.group = QButtonGroup(self)
        for b in (self.head, self.last, self.all):
            self.group.addButton(b)
        self.group.buttonToggled.connect(lambda _b, on: on and self._changed())
        self.blocks.valueChanged.connect(lambda _v: self.last.isChecked() and self._changed())
        self.count = QLabel("")
        self.count.setWordWrap(True)
        last_row = QHBoxLayout()
        last_row.addWidget(self.last)
        last_row.addWidget(self.blocks)
        last_row.addStretch(1)
        vstack(self, box, self.head, last_row, self.all, self.count)

    def strategy(self) -> str:
        if self.last.isChecked():
            return f"last:{self.blocks.value()}"
        return "none" if self.all.isChecked() else "head"

    def _changed(self) -> None:
        self.count.setText("counting…")
        self.strategy_changed.emit(self.strategy())

    def show_info(self, info) -> None:
        """A :class:`~convviz.core.finetune.outcomes.FreezeInfo` for the current strategy."""
        if info.strategy != self.strategy():
            return
        self.blocks.setMaximum(max(1, info.blocks))
        share = info.trainable_params / max(1, info.total_params)
        self.count.setText(f"<b>{info.trainable_params:,}</b> of {info.total_params:,} parameters train ({share:.1%}); "
                           f"{len(info.frozen_modules)} layers frozen (marked ❄ in the Layers tab once a folder is chosen)."
                           + (f" {info.reads}" if info.reads else ""))
