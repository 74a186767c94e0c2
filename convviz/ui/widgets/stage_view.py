"""The stage-view protocol: a view that animates over frames and reports the unit under the mouse.

Implement it and a :class:`~convviz.ui.widgets.stage_player.StagePlayer` gives the view a
transport (play, step, scrub, speed, keyboard), PNG and GIF export, and the main window
draws the receptive field of whatever ``unit_hovered`` names on the photo.

* ``frames_changed(int)`` — the number of frames changed (new settings or data);
* ``unit_hovered(object)`` — ``(layer name, out_row, out_col)`` of a real model unit, or None;
* :meth:`frame_count`, :attr:`frame`, :meth:`set_frame` — frame ``i`` of ``frame_count()``;
* :meth:`grab_frame` — the picture of the current frame as shown (for PNG/GIF export).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from PySide6.QtGui import QImage


@runtime_checkable
class StageView(Protocol):
    """What a :class:`StagePlayer` needs from a view (Qt signals are class attributes of the view)."""

    frames_changed: object
    unit_hovered: object

    def frame_count(self) -> int: ...

    @property
    def frame(self) -> int: ...

    def set_frame(self, index: int) -> None: ...

    def grab_frame(self) -> QImage: ...


def grab_stage(stage) -> QImage:
    """The picture of a :class:`~convviz.ui.widgets.stage_layout.Stage` after a fresh layout."""
    stage.relayout()
    return stage.grab().toImage()
