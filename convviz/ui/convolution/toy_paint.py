"""How the toy grid's three grids are painted: input (shown channel, padding, cells never
read), filter or pooling window, and the shown output map. Mixed into
:class:`~convviz.ui.convolution.toy.ToyView` (needs its canvases, values and weights).
"""
from __future__ import annotations

import itertools

import numpy as np

from convviz.core.geometry.arithmetic import CONV, AxisSpec
from convviz.ui.convolution.arithmetic import num
from convviz.ui.widgets import grid_canvas as cv
from convviz.ui.widgets.stage_layout import caption_html, legend_html

LABEL_LIMIT = 18  # numbers are written in the cells of grids up to this many cells across
UNREAD = cv.tint(cv.VERMILLION, 0.38)
FILLED = cv.tint(cv.GREEN, 0.28)
CURRENT = cv.tint(cv.SKY, 0.75)


class ToyPaint:
    """Grid painting of :class:`~convviz.ui.convolution.toy.ToyView`."""

    def _paint_input(self, geom, channels: int) -> None:
        s = geom.spec
        n = geom.extent
        rgba = cv.solid(n, n, cv.WHITE, 0)
        rgba[:s.padded, :s.padded] = cv.solid(s.padded, s.padded, cv.PAD_GREY)
        inside = slice(s.pad_lo, s.pad_lo + s.size)
        rgba[inside, inside] = cv.solid(s.size, s.size, cv.WHITE)
        hatch = np.zeros((n, n), bool)
        if geom.ok and geom.uncovered:
            unread = np.zeros((s.size, s.size), bool)
            unread[list(geom.uncovered), :] = True
            unread[:, list(geom.uncovered)] = True
            rgba[inside, inside][unread] = (*UNREAD, 255)
            hatch[inside, inside] = unread
        labels = None
        if n <= LABEL_LIMIT:
            pad_text = "−∞" if s.mode == "max" else "0"
            labels = [["" for _ in range(n)] for _ in range(n)]
            for r, c in itertools.product(range(s.padded), repeat=2):
                ir, ic = r - s.pad_lo, c - s.pad_lo
                inside_cell = 0 <= ir < s.size and 0 <= ic < s.size
                labels[r][c] = f"{self.values[self.shown_channel, ir, ic]:g}" if inside_cell else pad_text
        self.input_canvas.set_grid(rgba, labels, inner=(s.pad_lo, s.pad_lo, s.pad_lo + s.size - 1,
                                                        s.pad_lo + s.size - 1), stack=min(channels - 1, 2),
                                   hatch=hatch)
        padded = s.pad_lo or s.padding_end
        pads = {"max": ", pads with −∞", "avg": ", zeros counted in the mean"}.get(s.mode, "") if padded else ""
        ring = (f"padding P&nbsp;=&nbsp;{s.pad_lo}" if s.pad_lo == s.padding_end else
                f"TF SAME padding: {s.pad_lo}&nbsp;before, {s.padding_end}&nbsp;after")
        self.input_caption.setText(caption_html(
            f"<b>Input</b> {s.size}×{s.size}" + (f"×{channels} · channel {self.shown_channel}" if channels > 1 else ""),
            f"{ring} → {s.padded}×{s.padded}{pads}"))

    def _paint_output(self, geom, depth: int) -> None:
        """The shown filter's / channel's output values (revealed frame by frame) over empty white cells."""
        if not geom.ok:
            self.output_canvas.set_grid(cv.solid(1, 1, cv.WHITE, 0))
            return
        o = geom.output
        labels = None
        if o <= LABEL_LIMIT:
            labels = [[num(self.shown_output[r, c]) for c in range(o)] for r in range(o)]
        self.output_canvas.set_grid(cv.solid(o, o, FILLED), labels, inner=(0, 0, o - 1, o - 1),
                                    stack=min(depth - 1, 2),
                                    hidden=cv.solid(o, o, cv.WHITE))

    def _paint_kernel(self, spec: AxisSpec, channels: int) -> None:
        key = (spec.kernel, spec.dilation, spec.mode, channels, self.shown_channel, self.shown_filter,
               None if self.weights is None else self.weights.shape[0])
        if key == getattr(self, "_kernel_key", None):
            return
        self._kernel_key = key
        n = spec.span
        rgba = cv.solid(n, n, (246, 246, 246))
        labels = [["" for _ in range(n)] for _ in range(n)]
        for i, j in itertools.product(range(spec.kernel), repeat=2):
            r, c = i * spec.dilation, j * spec.dilation
            if self.weights is None:
                rgba[r, c, :3] = cv.tint(cv.SKY, 0.35)
            else:
                w = self.weights[self.shown_filter, self.shown_channel, i, j]
                rgba[r, c, :3] = cv.tint(cv.BLUE, 0.35) if w < 0 else cv.tint(cv.YELLOW, 0.6) if w > 0 else cv.WHITE
                labels[r][c] = f"{w:g}".replace("-", "−")
        self.kernel_canvas.set_grid(rgba, labels if n <= LABEL_LIMIT else None, inner=(0, 0, n - 1, n - 1),
                                    stack=min(channels - 1, 2) if spec.kind == CONV else 0)

    def _legend(self, spec, geom) -> str:
        items = [(cv.WHITE, "input"), (cv.SKY, "window taps"), (cv.BLUE, "window"), (FILLED, "output computed"),
                 (CURRENT, "current output"), (cv.ORANGE, "hovered")]
        if spec.pad_lo or spec.padding_end:
            items.insert(1, (cv.PAD_GREY, "padding (−∞)" if spec.mode == "max" else "padding (zeros)"))
        if geom.ok and geom.uncovered:
            items.insert(1, (UNREAD, "never read (hatched)"))
        if not geom.ok:
            items = [(cv.WHITE, "input"), (cv.PAD_GREY, "padding"), (cv.VERMILLION, "window that does not fit")]
        if geom.ok and geom.partial:
            items.append((cv.PURPLE, "partial window / ceil-only output"))
        return legend_html(items)

