"""Status bar fields: busy indicator, model (and its note), device, forward time, image."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QStatusBar, QWidget

ERROR_STYLE = "color: #b3261e; font-weight: 600;"


def _field(tooltip: str) -> QLabel:
    label = QLabel("–")
    label.setToolTip(tooltip)
    label.setContentsMargins(8, 0, 8, 0)
    return label


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class StatusFields:
    """Permanent labels on the right of a QStatusBar, and a busy spinner on the left."""

    def __init__(self, bar: QStatusBar, parent: QWidget | None = None):
        self.bar = bar
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setFixedSize(80, 12)
        self.busy_bar.setTextVisible(False)
        self.busy_text = QLabel()
        self.busy_text.setTextFormat(Qt.TextFormat.PlainText)
        self.model = _field("Current model (and a note, e.g. random weights)")
        self.device = _field("Where the model runs")
        self.forward = _field("Time of the last forward pass (a cached pass is not re-run)")
        self.image = _field("Current image: name and size in pixels")
        bar.addWidget(self.busy_bar)
        bar.addWidget(self.busy_text)
        for i, label in enumerate((self.model, self.device, self.forward, self.image)):
            if i:
                bar.addPermanentWidget(_separator())
            bar.addPermanentWidget(label)
        self.set_idle()
        self.model.setText("Model: loading…")
        self.device.setText("Device: cpu")
        self.forward.setText("Forward: –")
        self.image.setText("Image: –")

    def set_busy(self, text: str) -> None:
        self.busy_bar.setVisible(True)
        self.busy_text.setStyleSheet("")
        self.busy_text.setText(text)

    def set_idle(self) -> None:
        self.busy_bar.setVisible(False)
        if not self.busy_text.styleSheet():
            self.busy_text.setText("Ready")

    def set_error(self, text: str) -> None:
        """Show a one-line problem until the next busy message."""
        self.busy_bar.setVisible(False)
        self.busy_text.setStyleSheet(ERROR_STYLE)
        self.busy_text.setText(text)

    def set_model(self, title: str, note: str, device: str) -> None:
        short = note if len(note) <= 60 else note[:59] + "…"
        self.model.setText(f"Model: {title}" + (f"  ⚠ {short}" if note else ""))
        self.model.setToolTip(f"{title}\n{note}" if note else title)
        self.model.setStyleSheet("color: #9a5b00;" if note else "")
        self.device.setText(f"Device: {device}")

    def set_forward(self, ms: float) -> None:
        self.forward.setText(f"Forward: {ms:.0f} ms")

    def set_image(self, name: str, width: int, height: int) -> None:
        self.image.setText(f"Image: {name}  {width}×{height}")
