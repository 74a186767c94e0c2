"""Saving what the Layers panel shows: the mosaic PNG, one channel PNG, the layer's raw values (.npy).

Writes are small (a mosaic is at most a few MB) and happen on the GUI thread, atomically
(:func:`convviz.core.atomic.atomic_write`: a file appears whole or not at all); a failure is
reported in one line through the panel's window, never as a traceback.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QFileDialog, QMessageBox

from convviz.core.atomic import WriteError, atomic_write
from convviz.core.views.mosaic import to_rgb8

#: A channel PNG is enlarged (nearest neighbour) until its short side reaches this many pixels.
CHANNEL_MIN_SIDE = 224


def channel_rgb(values: np.ndarray, lut: np.ndarray, min_side: int = CHANNEL_MIN_SIDE) -> np.ndarray:
    """(H, W) values → (H·f, W·f, 3) uint8 through ``lut``, scaled to the channel's min…max, f ≥ 1 integer."""
    lo, hi = float(values.min()), float(values.max())
    unit = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    rgb = to_rgb8(unit.astype(np.float32), lut)
    factor = max(1, -(-min_side // max(1, min(values.shape))))
    return np.ascontiguousarray(rgb.repeat(factor, axis=0).repeat(factor, axis=1))


class Exports:
    """The three exports of one :class:`~convviz.ui.layers.panel.LayersPanel`."""

    def __init__(self, panel):
        self.panel = panel

    def _name(self) -> str:
        return (self.panel.current or "layer").replace(":", "_")

    def _report(self, message: str) -> None:
        window = self.panel.window()
        if hasattr(window, "show_error"):
            window.show_error(message)
        else:
            QMessageBox.warning(self.panel, "convviz", message)

    def _ask(self, title: str, suggested: str, pattern: str) -> str:
        return QFileDialog.getSaveFileName(self.panel, title, suggested, pattern)[0]

    def export_mosaic(self, path: str) -> bool:
        """The mosaic as shown (one pixel per unit, white gaps) as PNG."""
        rgb = self.panel.mosaic.colored_mosaic()
        return rgb is not None and self._save_png(rgb, path)

    def export_channel(self, path: str) -> bool:
        """The chosen channel, colour-mapped to its own min…max, as PNG."""
        mosaic = self.panel.mosaic
        if mosaic.maps is None:
            return False
        return self._save_png(channel_rgb(mosaic.channel_values(mosaic.spin.value()), mosaic.lut), path)

    def export_values(self, path: str) -> bool:
        """The layer's raw output (C, H, W) — or (N,) for a vector — as float32 ``.npy``."""
        mosaic = self.panel.mosaic
        if mosaic.maps is None:
            return False
        values = np.ascontiguousarray(mosaic.maps.reshape(mosaic.shape) if len(mosaic.shape) == 1 else mosaic.maps,
                                      dtype=np.float32)
        return self._write(path, lambda handle: np.save(handle, values, allow_pickle=False))

    def _save_png(self, rgb: np.ndarray, path: str) -> bool:
        return self._write(path, lambda handle: Image.fromarray(rgb).save(handle, "PNG"))

    def _write(self, path: str, write) -> bool:
        try:
            atomic_write(path, write)
        except (OSError, ValueError) as exc:
            self._report(str(exc) if isinstance(exc, WriteError) else f"{os.path.basename(path)}: could not write ({exc})")
            return False
        return True

    def ask_mosaic(self) -> None:
        if self.panel.mosaic.maps is None:
            return self._report("No layer shown yet: select a layer first.")
        path = self._ask("Save mosaic", f"{self._name()}-mosaic.png", "PNG (*.png)")
        if path:
            self.export_mosaic(path)

    def ask_channel(self) -> None:
        if self.panel.mosaic.maps is None:
            return self._report("No layer shown yet: select a layer first.")
        channel = self.panel.mosaic.spin.value()
        path = self._ask("Save channel", f"{self._name()}-channel{channel}.png", "PNG (*.png)")
        if path:
            self.export_channel(path)

    def ask_values(self) -> None:
        if self.panel.mosaic.maps is None:
            return self._report("No layer shown yet: select a layer first.")
        path = self._ask("Save raw values", f"{self._name()}.npy", "NumPy array (*.npy)")
        if path:
            self.export_values(path)
