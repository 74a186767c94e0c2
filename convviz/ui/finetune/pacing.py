"""When the training task may go on: after the GUI has painted what it sent.

Two moments are paced. The task starts only once the Train click's running state (the cleared
curves) is painted, or :data:`START_AFTER_PAINT_MS` later when nothing repaints: a task starting
during that 15-35 ms paint shares the GIL with it and stretched the click's turn past 50 ms
(measured). And after each training update the task waits (the session's paced task) until the
plots have stopped repainting for :data:`DRAW_SETTLE_MS`, then :class:`TrainPacer` tells the session
how many updates are drawn.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer

#: pyqtgraph repaints an update in 2-4 paints a few ms apart (its axes follow the range one paint later)
DRAW_SETTLE_MS = 12
#: the task starts once the running state is painted, or after this long when nothing repaints
START_AFTER_PAINT_MS = 60


class TrainPacer(QObject):
    """Starts the training task after the next paint and releases it after each drawn update."""

    def __init__(self, start: Callable[[], None], shown: Callable[[int], None], parent: QObject | None = None):
        super().__init__(parent)
        self._start, self._shown = start, shown
        self.pending = False  #: Train was clicked; the task has not been submitted yet
        self.updates = 0  #: training updates received from the running task
        self._drawing = False  #: an update's plots are waiting to be painted
        self._settle = QTimer(self, singleShot=True, interval=DRAW_SETTLE_MS)
        self._settle.timeout.connect(self.release)
        self._start_timer = QTimer(self, singleShot=True)
        self._start_timer.timeout.connect(self._go)

    def arm(self) -> None:
        """Train was clicked: start once the running state is painted."""
        self.pending, self.updates, self._drawing = True, 0, False
        self._start_timer.start(START_AFTER_PAINT_MS)

    def disarm(self) -> bool:
        """Cancel a start that has not happened; True if one was pending."""
        was, self.pending = self.pending, False
        self._start_timer.stop()
        return was

    def update_arrived(self, will_paint: bool) -> None:
        """One more update is shown; ``will_paint``: its plots repaint on screen (else release at once)."""
        self.updates += 1
        self._drawing = will_paint
        if not will_paint:
            QTimer.singleShot(0, self.release)

    def painted(self) -> None:
        """The plots were painted: start a pending task, or release once they stop repainting."""
        if self.pending:
            self._start_timer.start(0)  # after this paint pass
        elif self._drawing or self._settle.isActive():
            self._drawing = False
            self._settle.start()

    def release(self) -> None:
        self._shown(self.updates)

    def _go(self) -> None:
        if self.pending:
            self.pending = False
            self._start()
