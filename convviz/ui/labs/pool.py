"""Pooling lab: max, average and L2 pooling of the same real map, with the window sliding.

Window, stride, padding and ceil_mode are adjustable; each change asks the session for a
new ``pool_lab`` view (computed from the cached forward pass, never a new one). The stage
(:class:`~convviz.ui.labs.pool_stage.PoolStage`) lives in a
:class:`~convviz.ui.widgets.stage_player.StagePlayer`: play / step / scrub, Save frame and
Save GIF come from there.
"""
from __future__ import annotations

import html

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from convviz.core.labs.names import POOL_TYPE_NAMES
from convviz.ui.widgets.stage_player import StagePlayer

from ..widgets.sections import text_label
from .base import LabWidget, is_map_shape
from .maps import fmt
from .pool_stage import PoolStage


def _spin(prefix: str, low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setPrefix(prefix)
    spin.setToolTip(tip)
    return spin


class PoolLab(LabWidget):
    """Lab ``pool``: any (C, H, W) map pooled three ways; the window slides with the shared transport."""

    NAME = "pool"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._own: dict | None = None  #: a pooling layer's own settings (None: 2×2, stride 2)
        self.title = QLabel("Select any layer with a (channels, height, width) map.")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.channel = _spin("channel ", 0, 0, 0, "Which channel of the map to pool")
        self.kernel = _spin("window ", 1, 16, 2, "Window size K (K×K)")
        self.stride = _spin("stride ", 1, 16, 2, "Step between windows")
        self.padding = _spin("padding ", 0, 8, 0, "Padding on every side (at most half the window)")
        self.ceil = QCheckBox("ceil_mode")
        self.ceil.setToolTip("Round the output size up: keep a last, partial window")
        controls = QHBoxLayout()
        for w in (self.channel, self.kernel, self.stride, self.padding, self.ceil):
            controls.addWidget(w)
        controls.addStretch(1)
        for spin in (self.channel, self.kernel, self.stride, self.padding):
            spin.valueChanged.connect(self._changed)
        self.ceil.toggled.connect(self._changed)
        self.sizes = text_label(rich=True)
        self.notes = text_label(colour="#666")
        self.stage = PoolStage()
        self.stage.cell_hovered.connect(self._hovered)
        self.player = StagePlayer([("Window sliding", self.stage)], speeds=[8.0], export_name="pooling")
        self.lay_out(controls, self.sizes, (self.player, 1), self.hover, self.notes)

    # ---- lab API ---------------------------------------------------------------------
    def bind(self, session) -> None:
        super().bind(session)
        self.player.runner = session.runner

    def not_applicable(self) -> str:
        return "pooling needs a (channels, height, width) map; this layer's output is a vector"

    def args(self) -> dict:
        return {"channel": self.channel.value(), "kernel": self.kernel.value(), "stride": self.stride.value(),
                "padding": self.padding.value(), "ceil_mode": self.ceil.isChecked()}

    def set_layer(self, name: str, row, module_type: str | None = None) -> None:
        shape = getattr(row, "out_shape", None)
        channels = shape[0] if is_map_shape(shape) else 1
        own = None
        if row is not None and (module_type or row.type) in POOL_TYPE_NAMES and row.kernel is not None:
            pad = row.padding[0] if isinstance(row.padding, tuple) else 0
            own = dict(kernel=row.kernel[0], stride=(row.stride or row.kernel)[0], padding=pad)
        self._own = own
        settings = own or dict(kernel=self.kernel.value(), stride=self.stride.value(), padding=self.padding.value())
        for spin, value in ((self.channel, min(self.channel.value(), channels - 1)), (self.kernel, settings["kernel"]),
                            (self.stride, settings["stride"]), (self.padding, settings["padding"])):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.channel.setRange(0, max(0, channels - 1))
        self.channel.setSuffix(f" of {channels}")
        super().set_layer(name, row, module_type)

    def set_settings(self, kernel: int | None = None, stride: int | None = None, padding: int | None = None,
                     ceil_mode: bool | None = None, channel: int | None = None) -> None:
        """Change several settings with one request."""
        for spin, value in ((self.kernel, kernel), (self.stride, stride), (self.padding, padding),
                            (self.channel, channel)):
            if value is not None:
                spin.blockSignals(True)
                spin.setValue(int(value))
                spin.blockSignals(False)
        if ceil_mode is not None:
            self.ceil.blockSignals(True)
            self.ceil.setChecked(bool(ceil_mode))
            self.ceil.blockSignals(False)
        self._changed()

    def _changed(self, *_args) -> None:
        self.padding.setMaximum(max(0, self.kernel.value() // 2))
        self.request()

    def set_status(self, text: str) -> None:
        self.hover.setText(text or " ")

    # ---- drawing ---------------------------------------------------------------------
    def render(self, d) -> None:
        where = "its input (what the pooling layer received)" if d.source == "input" else "its output"
        self.title.setText(f"{d.layer}: pooling channel {d.channel} of {where}")
        c, h, w = d.shape
        _, oh, ow = d.out_shape
        stride_text = f"stride {d.stride}, padding {d.padding}" + (", ceil_mode" if d.ceil_mode else "")
        self.sizes.setText(f"Output size: {h}×{w} → <b>{oh}×{ow}</b> ({d.kernel}×{d.kernel}, {stride_text}). "
                           f"{html.escape(d.reduction)}.")
        self.notes.setText(" ".join(d.notes))
        self.notes.setVisible(bool(d.notes))
        self.stage.set_data(d)

    def _hovered(self, found) -> None:
        if self.hovered_cell(found) is None:
            return
        d = self.data
        name, r, c = found
        if name == "input":
            self.hover.setText(f"input ({r}, {c}) = {fmt(d.input_map[r, c])}")
            # the map is the layer's own output (or a pooling layer's input: not its units)
            self.hover_unit((r, c) if d.source == "output" else None)
            return
        values = {"max": d.max_map, "avg": d.avg_map, "l2": d.l2_map}[name]
        if values is None:
            self.hover.setText(" ")
            self.hover_unit(None)
            return
        self.hover.setText(f"{name} ({r}, {c}) = {fmt(values[r, c])}")
        own = self._own is not None and d.source == "input" and (d.kernel, d.stride, d.padding) == (
            self._own["kernel"], self._own["stride"], self._own["padding"])
        self.hover_unit((r, c) if own else None)  # a pooled unit is a model unit only with the layer's settings
        self.player.set_frame(r * d.out_shape[2] + c)
