"""Section 1 of the Fine-tune tab: the folder of images and what the scan found in it."""
from __future__ import annotations

import html
import os
from collections import Counter

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from convviz.ui.finetune.thumbs import ThumbStrip
from convviz.ui.widgets.sections import heading, vstack

MAX_STRIPS = 6


def report_html(scan) -> str:
    """Classes, images per class (train / val), how the split was made, files skipped and why."""
    train, val = scan.counts("train"), scan.counts("val")
    split = ("from the train/ and val/ folders" if scan.split == "folders"
             else "validation held out per class (stratified, fixed seed)")
    rows = "".join(f"<tr><td><b>{html.escape(c)}</b></td><td align='right'>&nbsp;{train[c]}</td>"
                   f"<td align='right'>&nbsp;{val[c]}</td></tr>" for c in scan.classes)
    text = (f"{len(scan.classes)} classes · {len(scan.train)} training / {len(scan.val)} validation images, {split}"
            f"<table cellspacing='2'><tr><td></td><td>&nbsp;train</td><td>&nbsp;val</td></tr>{rows}</table>")
    if scan.skipped:
        reasons = Counter(s.reason.split(" (")[0] for s in scan.skipped)
        why = ", ".join(f"{n} {html.escape(r)}" for r, n in reasons.most_common(4))
        text += f"<span style='color:#9a5b00'>Skipped {len(scan.skipped)} file(s): {why}</span>"
    return text


class DataSection(QWidget):
    """Choose a folder (one sub-folder per class); shows the scan report and a thumbnail row per class."""

    folder_chosen = Signal(str)
    usable_changed = Signal(bool)  #: a scanned folder is (or is no longer) there to train on

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        box, caption = heading("1 · Your images")
        caption.setText("A folder with one sub-folder per class (optionally train/ and val/ inside).")
        self.choose = QPushButton("Choose folder…")
        self.choose.clicked.connect(self._ask)
        self.path = QLabel("no folder chosen")
        self.path.setStyleSheet("color: #444;")
        self.path.setWordWrap(True)
        self.report = QLabel("")
        self.report.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.choose)
        row.addWidget(self.path, 1)
        self.strips_box = QVBoxLayout()
        self.strips_box.setSpacing(2)
        vstack(self, box, row, self.report, self.strips_box)
        self.strips: list[tuple[QLabel, ThumbStrip]] = []
        self.usable = False

    def _set_usable(self, usable: bool) -> None:
        if usable != self.usable:
            self.usable = usable
            self.usable_changed.emit(usable)

    def _ask(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images, one sub-folder per class")
        if folder:
            self.folder_chosen.emit(folder)

    def show_scanning(self, folder: str) -> None:
        self.path.setText(f"{folder} — scanning…")

    def show_report(self, report) -> None:
        scan = report.scan
        self.path.setText(scan.root)
        self.report.setText(report_html(scan))
        self._set_usable(True)
        for label, strip in self.strips:
            label.deleteLater()
            strip.deleteLater()
        self.strips = []
        for name in scan.classes[:MAX_STRIPS]:
            label = QLabel(f"{name}")
            label.setStyleSheet("color: #444; font-weight: 600;")
            strip = ThumbStrip(icon_side=56)
            strip.set_items([(p, rgb, "", os.path.basename(p)) for p, rgb in report.thumbs.get(name, [])])
            self.strips_box.addWidget(label)
            self.strips_box.addWidget(strip)
            self.strips.append((label, strip))

    def show_failed(self, folder: str, previous) -> None:
        """A folder that cannot be used: the previous report (if any) stays."""
        self.path.setText(previous.scan.root if previous is not None else "no folder chosen")
        self._set_usable(previous is not None)
