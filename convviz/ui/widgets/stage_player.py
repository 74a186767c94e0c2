"""A host for stage views: tabs of views, one transport, PNG / GIF export, keyboard control.

Keys (Space play/pause, ←/→ step, Home/End) reach the transport only when the focused
control does not use them: they are handled in :meth:`StagePlayer.keyPressEvent`, which Qt
calls only for key presses the focused child (slider, spin box, check box, text field)
ignored — never through application shortcuts that would steal them.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from .frame_transport import FrameTransport
from .save import save_png
from .gif_export import GifExport

#: Keys the transport answers to, and what they do; listed in Help ▸ Keyboard shortcuts.
TRANSPORT_KEYS = (("Space", "play / pause the animation"), ("← / →", "previous / next frame"),
                  ("Home / End", "first / last frame"))


class StagePlayer(QWidget):
    """Shows one of several :class:`~convviz.ui.widgets.stage_view.StageView` s with a shared transport."""

    view_changed = Signal(int)
    unit_hovered = Signal(object)  #: the current view's hovered unit, for the receptive-field box

    def __init__(self, views: list[tuple[str, QWidget]], speeds: list[float] | None = None,
                 export_name: str = "frame", parent: QWidget | None = None):
        super().__init__(parent)
        self.views = [view for _, view in views]
        self.export_name = export_name
        self.tabs = QTabWidget()
        for title, view in views:
            self.tabs.addTab(view, title)
        self.tabs.tabBar().setVisible(len(views) > 1)
        self.transport = FrameTransport()
        self.save_frame_button = QPushButton("Save frame…")
        self.save_gif_button = QPushButton("Save GIF…")
        self.save_frame_button.setToolTip("Save the current frame as a PNG image")
        self.save_gif_button.setToolTip("Save the whole animation as an animated GIF")
        self.status_label = QLabel()
        self.status_label.setStyleSheet("color: #555;")
        self.status_label.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(self.transport, 1)
        bar.addSpacing(12)
        bar.addWidget(self.save_frame_button)
        bar.addWidget(self.save_gif_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bar)
        layout.addWidget(self.status_label)
        self._speeds = list(speeds or [4.0] * len(self.views))
        self._index = 0
        self._gif_export: GifExport | None = None
        self.runner = None  #: the session's job runner (set by the panel); writes GIF files
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.transport.frame_changed.connect(lambda i: self.view.set_frame(i))
        for i, view in enumerate(self.views):
            view.frames_changed.connect(lambda n, i=i: self._frames_changed(i, n))
            view.unit_hovered.connect(lambda unit, i=i: self._hovered(i, unit))
        self.tabs.currentChanged.connect(self._tab_changed)
        self.save_frame_button.clicked.connect(self.ask_save_frame)
        self.save_gif_button.clicked.connect(self.ask_save_gif)
        self.transport.set_speed(self._speeds[0])
        self.transport.set_count(self.view.frame_count(), 0)

    # ---- state ---------------------------------------------------------------------
    @property
    def view(self):
        """The view of the current tab."""
        return self.views[self._index]

    @property
    def index(self) -> int:
        return self._index

    def show_view(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def frame(self) -> int:
        return self.view.frame

    def frame_count(self) -> int:
        return self.view.frame_count()

    def set_frame(self, index: int) -> None:
        self.transport.set_index(index)

    def step(self, delta: int = 1) -> None:
        self.transport.step(delta)

    def play(self) -> None:
        self.transport.play()

    def pause(self) -> None:
        """Stop the animation timer."""
        self.transport.pause()

    def _frames_changed(self, index: int, count: int) -> None:
        if index == self._index:
            self.transport.set_count(count, self.view.frame)

    def _hovered(self, index: int, unit) -> None:
        if index == self._index:
            self.unit_hovered.emit(unit)

    def _tab_changed(self, index: int) -> None:
        self.transport.pause()
        self._speeds[self._index] = float(self.transport.speed.currentData())
        self._index = index
        self.transport.set_speed(self._speeds[index])
        self.transport.set_count(self.view.frame_count(), self.view.frame)
        self.unit_hovered.emit(None)
        self.view_changed.emit(index)

    # ---- keyboard --------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        actions = {Qt.Key.Key_Space: self.transport.toggle, Qt.Key.Key_Left: lambda: self.transport.step(-1),
                   Qt.Key.Key_Right: lambda: self.transport.step(1), Qt.Key.Key_Home: self.transport.home,
                   Qt.Key.Key_End: self.transport.end}
        action = actions.get(event.key()) if event.modifiers() == Qt.KeyboardModifier.NoModifier else None
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.setFocus(Qt.FocusReason.MouseFocusReason)  # clicking the stage gives the keys to the transport
        super().mousePressEvent(event)

    # ---- export ----------------------------------------------------------------------
    def grab_frame(self):
        """The current view's picture exactly as shown."""
        return self.view.grab_frame()

    def export_frame_png(self, path: str) -> bool:
        """Save the current frame as a PNG; True on success."""
        problem = save_png(self.grab_frame(), str(path))
        self.status_label.setText(problem[:1].upper() + problem[1:] if problem else f"Saved frame to {path}")
        return not problem

    def export_gif(self, path: str, fps: float = 4.0, max_frames: int = 400) -> int:
        """Save the animation of the current view as an animated GIF now; returns the frames written.

        Animations longer than ``max_frames`` are sampled evenly (first and last frame kept).
        """
        export = self._new_export(path, fps, max_frames)
        return self._export_done(export, export.run() if export.count else 0)

    def start_gif_export(self, path: str, fps: float = 4.0, max_frames: int = 400) -> GifExport | None:
        """Export in the background of the event loop (progress in the status line, cancellable)."""
        export = self._new_export(path, fps, max_frames)
        if not export.count:
            self._export_done(export, 0)
            return None
        self._gif_export = export
        self.save_gif_button.setText("Cancel GIF")
        export.progress.connect(lambda done, total: self.status_label.setText(f"Rendering GIF: {done}/{total} frames…"))
        export.finished.connect(lambda frames: self._export_done(export, frames))
        export.start()
        return export

    def _new_export(self, path: str, fps: float, max_frames: int) -> GifExport:
        self.transport.pause()
        return GifExport(self.view, self.grab_frame, path, fps, max_frames, self, runner=self.runner)

    def _export_done(self, export: GifExport, frames: int) -> int:
        if self._gif_export is export:
            self._gif_export = None
            self.save_gif_button.setText("Save GIF…")
        if not export.count:
            self.status_label.setText("Nothing to animate with these settings.")
        elif frames:
            note = f" (every {export.count / frames:.1f}th of {export.count})" if export.sampled else ""
            self.status_label.setText(f"Saved {frames} frames{note} to {export.path}")
        else:
            self.status_label.setText(export.error or "GIF export cancelled.")
        export.deleteLater()
        return frames

    def ask_save_frame(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save frame", f"{self.export_name}.png", "PNG image (*.png)")
        if path:
            self.export_frame_png(path)

    def ask_save_gif(self) -> None:
        if self._gif_export is not None:
            self._gif_export.cancel()
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save animation", f"{self.export_name}.gif", "Animated GIF (*.gif)")
        if path:
            self.start_gif_export(path, fps=min(float(self.transport.speed.currentData()), 25.0))

    def cancel_export(self) -> None:
        if self._gif_export is not None:
            self._gif_export.cancel()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.transport.pause()
        self.cancel_export()
        super().hideEvent(event)
