"""Animated-GIF export of the Convolution panel.

Frames are rendered from the event loop a few at a time, so the window stays responsive
(with progress and a cancel) even for a 400-frame 64×64 animation; every frame is mapped
onto one shared palette (taken from the fullest, last frame) as soon as it is rendered.
The file itself is written by a job of the app's job runner (synchronously when there is
none). Scripts call :meth:`GifExport.run` to do
all of it at once.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from convviz.ui.widgets.image_view import qimage_to_array
from convviz.workers.files import write_gif

FRAMES_PER_TICK = 6
LAST_FRAME_MS = 1500


def qimage_to_pil(image: QImage):
    """RGB Pillow image from a QImage (copies the pixels)."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(qimage_to_array(image)[..., :3]), "RGB")


def frame_indices(count: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` frame numbers out of ``count``, evenly spread, first and last kept."""
    return np.unique(np.linspace(0, count - 1, min(count, max_frames)).round().astype(int))


class GifExport(QObject):
    """Renders ``view``'s frames through ``grab()`` and writes them to ``path``."""

    progress = Signal(int, int)  #: frames rendered, frames in all
    finished = Signal(int)  #: frames written; 0 when cancelled or the file could not be written

    def __init__(self, view, grab, path: str, fps: float, max_frames: int, parent: QObject | None = None,
                 runner=None):
        super().__init__(parent)
        self.runner = runner  #: :class:`convviz.workers.jobs.JobRunner` that writes the file
        self.view, self.grab, self.path = view, grab, str(path)
        self.count = view.frame_count()
        self.indices = frame_indices(self.count, max_frames) if self.count else np.zeros(0, int)
        self.step_ms = max(20, int(round(1000 / fps)))
        self.error = ""
        self._keep = view.frame
        self._palette = None
        self._frames: list = []
        self._writer = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

    @property
    def sampled(self) -> bool:
        return len(self.indices) < self.count

    def run(self) -> int:
        """Render and write everything now (blocking); returns the frames written."""
        while not self._render(len(self.indices)):
            pass
        return self._write()

    def start(self) -> None:
        """Render a few frames per event-loop turn; ``finished`` tells the end."""
        self._timer.start(0)

    def cancel(self) -> None:
        """Stop rendering; nothing is written."""
        if self._timer.isActive():
            self._timer.stop()
            self.view.set_frame(self._keep)
            self.finished.emit(0)

    def _tick(self) -> None:
        if not self._render(FRAMES_PER_TICK):
            self.progress.emit(len(self._frames), len(self.indices))
            return
        self._timer.stop()
        self.view.set_frame(self._keep)
        self.progress.emit(len(self._frames), len(self.indices))
        if self.runner is None:
            self.finished.emit(self._write())
            return
        self._writer = self.runner.submit(write_gif, self._frames, self.path, self._durations(), name="Writing GIF…")
        self._writer.finished.connect(self.finished.emit)
        self._writer.failed.connect(self._failed)

    def _failed(self, message: str) -> None:
        self.error = f"Could not write {self.path}: {message}"
        self.finished.emit(0)

    def _durations(self) -> list[int]:
        return [self.step_ms] * (len(self._frames) - 1) + [max(self.step_ms, LAST_FRAME_MS)]

    def _render(self, n: int) -> bool:
        """Render up to ``n`` more frames; True once all are done."""
        from PIL import Image

        if self._palette is None and len(self.indices):
            self.view.set_frame(int(self.indices[-1]))
            self._palette = qimage_to_pil(self.grab()).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
        for i in self.indices[len(self._frames): len(self._frames) + n]:
            self.view.set_frame(int(i))
            frame = qimage_to_pil(self.grab())
            self._frames.append(frame.quantize(palette=self._palette, dither=Image.Dither.NONE))
        return len(self._frames) == len(self.indices)

    def _write(self) -> int:
        self.view.set_frame(self._keep)
        if not self._frames:
            return 0
        try:
            return write_gif(self._frames, self.path, self._durations())
        except (OSError, ValueError) as exc:
            self.error = f"Could not write {self.path}: {exc}"
            return 0
