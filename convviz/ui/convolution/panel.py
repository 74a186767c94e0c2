"""The Convolution panel: a toy grid that explains the sliding window and its arithmetic,
and a real Conv2d of the loaded model doing the same on its real input.

Both are stage views in one :class:`~convviz.ui.widgets.stage_player.StagePlayer`
(transport, PNG/GIF export, keyboard). The real layer's data is the ``conv`` view of the
session (computed off the GUI thread, replayed when the image or model changes).
torch is never imported by this module (the data class lives in a torch-free module).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from convviz.ui.convolution.real import RealView
from convviz.ui.convolution.toy import ToyView
from convviz.ui.panel import Panel
from convviz.ui.widgets.stage_player import TRANSPORT_KEYS, StagePlayer

TOY, REAL = 0, 1
DEFAULT_SPEED = {TOY: 4, REAL: 120}
VIEW_KEY = "convolution.real"


class ConvolutionPanel(Panel):
    """Toy grid and real layer, one transport (play / step / scrub) and export buttons."""

    conv_layer_requested = Signal(str)
    toy_cell_hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.toy = ToyView()
        self.real = RealView()
        self.player = StagePlayer([("Toy grid", self.toy), ("Real layer", self.real)],
                                  speeds=[DEFAULT_SPEED[TOY], DEFAULT_SPEED[REAL]], export_name="convolution")
        self.tabs, self.transport = self.player.tabs, self.player.transport
        self.save_frame_button, self.save_gif_button = self.player.save_frame_button, self.player.save_gif_button
        self.status_label = self.player.status_label
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addWidget(self.player)
        self.toy.cell_hovered.connect(self.toy_cell_hovered)
        self.real.layer_requested.connect(self._request_layer)
        self.player.unit_hovered.connect(self.unit_hovered)
        self.player.view_changed.connect(self._view_changed)
        self.receptive_field_hovered = self.unit_hovered  # older name of the same signal

    # ---- session -------------------------------------------------------------------
    def bind(self, session) -> None:
        super().bind(session)
        self.player.runner = session.runner
        session.model_loaded.connect(lambda info: self.set_conv_layers(list(info.conv_layers), list(info.rows)))
        session.views_stale.connect(self.real.mark_stale)
        session.view_ready.connect(self._on_view)
        session.view_failed.connect(self._on_view_failed)

    def _request_layer(self, name: str) -> None:
        self.conv_layer_requested.emit(name)
        if self.session is not None and name:
            self.session.request_view(VIEW_KEY, "conv", name)

    def _on_view(self, key: str, data) -> None:
        if key == VIEW_KEY:
            self.set_conv_data(data)

    def _on_view_failed(self, key: str, message: str) -> None:
        if key == VIEW_KEY:
            self.real.show_failure(message)

    def is_ready(self) -> bool:
        return self.player.index == TOY or self.real.data is not None

    def shortcuts(self) -> list[tuple[str, str]]:
        return list(TRANSPORT_KEYS)

    # ---- public API ------------------------------------------------------------------
    @property
    def view(self) -> ToyView | RealView:
        """The view of the current tab."""
        return self.player.view

    def set_conv_layers(self, names: list[str], rows=None) -> None:
        """Fill the layer list with Conv2d module paths; shown data is cleared. With the model's
        :class:`~convviz.core.capture.layer_table.LayerRow` list, each entry shows kernel/type hints."""
        self.real.set_layers(names, rows)
        if self.player.index == REAL:
            self.real.request_current()

    def set_conv_data(self, data) -> None:
        """Show a whole layer (a :class:`~convviz.core.geometry.conv_probe.ConvLayerData`, or None)."""
        self.real.set_data(data)
        if data is not None:
            self.ready.emit()

    def show_toy(self) -> None:
        self.player.show_view(TOY)

    def show_real(self) -> None:
        self.player.show_view(REAL)

    def _view_changed(self, index: int) -> None:
        if index == REAL and self.real.data is None:
            self.real.request_current()

    def frame(self) -> int:
        return self.player.frame()

    def frame_count(self) -> int:
        return self.player.frame_count()

    def set_frame(self, index: int) -> None:
        self.player.set_frame(index)

    def step(self, delta: int = 1) -> None:
        self.player.step(delta)

    def play(self) -> None:
        self.player.play()

    def pause(self) -> None:
        """Stop the animation timer."""
        self.player.pause()

    # ---- export ------------------------------------------------------------------------
    def grab_frame(self):
        return self.player.grab_frame()

    def export_frame_png(self, path: str) -> bool:
        return self.player.export_frame_png(path)

    def export_gif(self, path: str, fps: float = 4.0, max_frames: int = 400) -> int:
        return self.player.export_gif(path, fps, max_frames)

    def start_gif_export(self, path: str, fps: float = 4.0, max_frames: int = 400):
        return self.player.start_gif_export(path, fps, max_frames)

    def ask_save_frame(self) -> None:
        self.player.ask_save_frame()

    def ask_save_gif(self) -> None:
        self.player.ask_save_gif()
