"""Status bar fields: busy indicator, model (and its note), device, forward time, image."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
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
    """Permanent labels on the right of a QStatusBar, and a busy spinner on the left.

    The spinner and the job's name appear only once work has run for :attr:`busy_delay_ms`: a new
    photo's views take a few tens of ms, and showing then hiding them each time re-lays out and
    repaints the status bar while the forward pass runs (it would flash too fast to read anyway).
    """

    busy_delay_ms = 250

    def __init__(self, bar: QStatusBar, parent: QWidget | None = None):
        self.bar = bar
        self._busy_timer = QTimer(parent or bar)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.timeout.connect(self._show_busy)
        self._busy_message = ""
        self._worked_since_error = False
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
        """Work is running (``text``: the newest job); shown at once if the spinner is up, else after the delay."""
        self._busy_message = text
        self._worked_since_error = True
        if not self.busy_bar.isHidden():
            self._show_busy()
        elif not self._busy_timer.isActive():
            self._busy_timer.start(self.busy_delay_ms)

    def _show_busy(self) -> None:
        self.busy_bar.setVisible(True)
        if self.busy_text.styleSheet():
            self.busy_text.setStyleSheet("")
        self.busy_text.setText(self._busy_message)

    def set_idle(self) -> None:
        """No work runs: "Ready", or the last problem if nothing has run since it was shown."""
        self._busy_timer.stop()
        self.busy_bar.setVisible(False)
        if self.busy_text.styleSheet():
            if not self._worked_since_error:
                return
            self.busy_text.setStyleSheet("")
        self.busy_text.setText("Ready")

    def set_error(self, text: str) -> None:
        """Show a one-line problem until work that starts after it ends."""
        self._busy_timer.stop()
        self._worked_since_error = False
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
