"""The Convolution panel: a toy grid that explains the sliding window and its arithmetic,
and a real Conv2d of the loaded model doing the same on its real input.

Public API used by the main window (plain data only, no threads here):

* :meth:`ConvolutionPanel.set_conv_layers` fills the layer list (names, and rows for the hints);
* ``conv_layer_requested(str)`` asks the app for a layer's data (computed off the GUI thread);
* :meth:`ConvolutionPanel.set_conv_data` shows a :class:`~convviz.core.conv_probe.ConvLayerData`;
* ``receptive_field_hovered(object)`` sends ``(layer name, out_row, out_col)`` or None;
* :meth:`export_frame_png` / :meth:`export_gif` save what the panel shows.

torch is never imported by this module (the data class lives in a torch-free module).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from convviz.ui.widgets.gif_export import GifExport
from convviz.ui.convolution.real import RealView
from convviz.ui.convolution.toy import ToyView
from convviz.ui.widgets.frame_transport import FrameTransport

TOY, REAL = 0, 1
DEFAULT_SPEED = {TOY: 4, REAL: 120}


class ConvolutionPanel(QWidget):
    """Toy grid and real layer, one transport (play / step / scrub) and export buttons."""

    conv_layer_requested = Signal(str)
    receptive_field_hovered = Signal(object)
    toy_cell_hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.toy = ToyView()
        self.real = RealView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.toy, "Toy grid")
        self.tabs.addTab(self.real, "Real layer")
        self.transport = FrameTransport()
        self.save_frame_button = QPushButton("Save frame…")
        self.save_gif_button = QPushButton("Save GIF…")
        self.save_frame_button.setToolTip("Save the current frame as a PNG image")
        self.save_gif_button.setToolTip("Save the whole animation as an animated GIF")
        self.status_label = QLabel()
        self.status_label.setStyleSheet("color: #555;")
        bar = QHBoxLayout()
        bar.addWidget(self.transport, 1)
        bar.addSpacing(12)
        bar.addWidget(self.save_frame_button)
        bar.addWidget(self.save_gif_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bar)
        layout.addWidget(self.status_label)
        self._frames = {TOY: 0, REAL: 0}
        self._speeds = dict(DEFAULT_SPEED)
        self._mode = TOY
        self._gif_export: GifExport | None = None
        self.transport.frame_changed.connect(lambda i: self.view.set_frame(i))
        self.toy.frames_changed.connect(lambda n: self._frames_changed(TOY, n))
        self.real.frames_changed.connect(lambda n: self._frames_changed(REAL, n))
        self.toy.cell_hovered.connect(self.toy_cell_hovered)
        self.real.layer_requested.connect(self.conv_layer_requested)
        self.real.output_hovered.connect(self._real_hovered)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.save_frame_button.clicked.connect(self.ask_save_frame)
        self.save_gif_button.clicked.connect(self.ask_save_gif)
        for key, slot in ((Qt.Key_Space, self.transport.toggle), (Qt.Key_Left, lambda: self.transport.step(-1)),
                          (Qt.Key_Right, lambda: self.transport.step(1)), (Qt.Key_Home, self.transport.home),
                          (Qt.Key_End, self.transport.end)):
            QShortcut(QKeySequence(key), self, slot, context=Qt.WidgetWithChildrenShortcut)
        self.transport.set_speed(self._speeds[TOY])
        self.transport.set_count(self.toy.frame_count(), 0)

    # ---- public API --------------------------------------------------------------
    @property
    def view(self) -> ToyView | RealView:
        """The view of the current tab."""
        return self.toy if self._mode == TOY else self.real

    def set_conv_layers(self, names: list[str], rows=None) -> None:
        """Fill the layer list with Conv2d module paths; shown data is cleared. With the model's
        :class:`~convviz.core.layer_table.LayerRow` list, each entry shows kernel/type hints."""
        self.real.set_layers(names, rows)
        if self._mode == REAL:
            self.real.request_current()

    def set_conv_data(self, data) -> None:
        """Show a whole layer (a :class:`~convviz.core.conv_probe.ConvLayerData`, or None)."""
        self.real.set_data(data)

    def show_toy(self) -> None:
        self.tabs.setCurrentIndex(TOY)

    def show_real(self) -> None:
        self.tabs.setCurrentIndex(REAL)

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

    # ---- wiring ------------------------------------------------------------------
    def _frames_changed(self, mode: int, count: int) -> None:
        if mode == self._mode:
            self.transport.set_count(count, self.view.frame)

    def _tab_changed(self, index: int) -> None:
        self.transport.pause()
        self._speeds[self._mode] = float(self.transport.speed.currentData())
        self._mode = index
        self.transport.set_speed(self._speeds[index])
        self.transport.set_count(self.view.frame_count(), self.view.frame)
        if index == REAL and self.real.data is None:
            self.real.request_current()

    def _real_hovered(self, cell) -> None:
        data = self.real.data
        self.receptive_field_hovered.emit(None if cell is None or data is None else (data.name, *cell))

    # ---- export ------------------------------------------------------------------
    def grab_frame(self) -> QImage:
        """The current view's picture (grids, formula, readout) exactly as shown."""
        stage = self.view.stage
        stage.relayout()
        return stage.grab().toImage()

    def export_frame_png(self, path: str) -> bool:
        """Save the current frame as a PNG; True on success."""
        ok = self.grab_frame().save(str(path), "PNG")
        self.status_label.setText(f"Saved frame to {path}" if ok else f"Could not write {path}")
        return ok

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
        return GifExport(self.view, self.grab_frame, path, fps, max_frames, self)

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
        path, _ = QFileDialog.getSaveFileName(self, "Save frame", "convolution.png", "PNG image (*.png)")
        if path:
            self.export_frame_png(path)

    def ask_save_gif(self) -> None:
        if self._gif_export is not None:
            self._gif_export.cancel()
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save animation", "convolution.gif", "Animated GIF (*.gif)")
        if path:
            self.start_gif_export(path, fps=min(float(self.transport.speed.currentData()), 25.0))

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.transport.pause()
        if self._gif_export is not None:
            self._gif_export.cancel()
        super().hideEvent(event)
