"""Play / pause / step / speed / scrubber for the frames of the Convolution panel.

Frame ``i`` puts the window on output cell ``i`` (row-major) with outputs ``0 … i`` filled.
The transport owns the only timer of the panel; :meth:`FrameTransport.pause` stops it.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

SPEEDS = (0.5, 1, 2, 4, 8, 15, 30, 60, 120, 240, 480, 960)


class FrameTransport(QWidget):
    """Buttons, a frame scrubber and a speed choice; emits ``frame_changed(int)``."""

    frame_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._count = 0
        self._index = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._step_per_tick = 1
        style = self.style()
        self.home_button = self._button(style.standardIcon(QStyle.SP_MediaSkipBackward), "First frame (Home)",
                                        self.home)
        self.back_button = self._button(style.standardIcon(QStyle.SP_MediaSeekBackward), "Step back (←)",
                                        lambda: self.step(-1))
        self.play_button = self._button(style.standardIcon(QStyle.SP_MediaPlay), "Play / pause (Space)", self.toggle)
        self.forward_button = self._button(style.standardIcon(QStyle.SP_MediaSeekForward), "Step forward (→)",
                                           lambda: self.step(1))
        self.end_button = self._button(style.standardIcon(QStyle.SP_MediaSkipForward), "Last frame (End)", self.end)
        self.scrubber = QSlider(Qt.Horizontal)
        self.scrubber.setToolTip("Drag to any frame")
        self.scrubber.valueChanged.connect(self.set_index)
        self.frame_label = QLabel()
        self.frame_label.setMinimumWidth(130)
        self.speed = QComboBox()
        for fps in SPEEDS:
            self.speed.addItem(f"{fps:g} frames/s", fps)
        self.speed.setCurrentIndex(SPEEDS.index(4))
        self.speed.setToolTip("Animation speed")
        self.speed.currentIndexChanged.connect(self._apply_speed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.home_button, self.back_button, self.play_button, self.forward_button, self.end_button):
            layout.addWidget(button)
        layout.addWidget(self.scrubber, 1)
        layout.addWidget(self.frame_label)
        layout.addWidget(QLabel("Speed"))
        layout.addWidget(self.speed)
        self._apply_speed()
        self._show_index()

    def _button(self, icon, tip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.NoFocus)
        button.clicked.connect(slot)
        return button

    # ---- state -------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self._count

    @property
    def index(self) -> int:
        return self._index

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def set_count(self, count: int, index: int | None = None) -> None:
        """Number of frames (0: nothing to show) and optionally the frame to show."""
        self._count = max(0, int(count))
        target = self._index if index is None else index
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, max(0, self._count - 1))
        self.scrubber.blockSignals(False)
        self.setEnabled(self._count > 0)
        if self._count == 0:
            self.pause()
        self._index = -1  # force the emit below
        self.set_index(min(max(0, target), max(0, self._count - 1)))

    def set_index(self, index: int) -> None:
        """Show frame ``index`` (clamped)."""
        index = min(max(0, int(index)), max(0, self._count - 1))
        if index == self._index:
            return
        self._index = index
        self._show_index()
        self.frame_changed.emit(index)

    def set_speed(self, fps: float) -> None:
        """Nearest available speed to ``fps`` frames per second."""
        best = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - fps))
        self.speed.setCurrentIndex(best)

    def _show_index(self) -> None:
        self.scrubber.blockSignals(True)
        self.scrubber.setValue(self._index)
        self.scrubber.blockSignals(False)
        self.frame_label.setText(f"Frame {self._index + 1} / {self._count}" if self._count else "No frames")

    # ---- actions -----------------------------------------------------------------
    def play(self) -> None:
        if self._count <= 1:
            return
        if self._index >= self._count - 1:
            self.set_index(0)
        self._timer.start()
        self.play_button.setIcon(self.style().standardIcon(QStyle.SP_MediaPause))

    def pause(self) -> None:
        self._timer.stop()
        self.play_button.setIcon(self.style().standardIcon(QStyle.SP_MediaPlay))

    def toggle(self) -> None:
        self.pause() if self.is_playing() else self.play()

    def step(self, delta: int) -> None:
        self.pause()
        self.set_index(self._index + delta)

    def home(self) -> None:
        self.step(-self._index)

    def end(self) -> None:
        self.step(self._count)

    def _apply_speed(self) -> None:
        fps = float(self.speed.currentData())
        interval = max(1000.0 / fps, 16.0)
        self._step_per_tick = max(1, round(fps * interval / 1000.0))
        self._timer.setInterval(int(interval))

    def _tick(self) -> None:
        nxt = self._index + self._step_per_tick
        if nxt >= self._count - 1:
            self.set_index(self._count - 1)
            self.pause()
        else:
            self.set_index(nxt)

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.pause()
        super().hideEvent(event)
