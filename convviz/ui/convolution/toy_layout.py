"""Where the toy grid's parts go: the three grids share one cell size, as large as the
room left by the text allows (a binary search over cell sizes), captions above, the
legend, formula, note and readout below. Mixed into :class:`ToyView`.
"""
from __future__ import annotations

from convviz.ui.widgets.stage_layout import label_height

MAX_CELL = 60
KERNEL_MIN_CELL, KERNEL_MIN_SIDE = 22, 88  # a filter is never drawn smaller than this, even beside a big input
MIN_GRID = 130  # below this grid height the panel scrolls rather than shrinking the grids further
MARGIN_X, MARGIN_Y, GRID_GAP, TEXT_GAP = 14, 10, 12, 6
COLUMN_GAP_MIN, COLUMN_GAP_MAX = 20, 72
CAPTION_MIN_WIDTH = 110
CELL_SIZES = (*range(MAX_CELL, 3, -1), *(4 * 0.9 ** k for k in range(1, 45)))  # tried largest first


class ToyLayout:
    """Stage geometry of :class:`~convviz.ui.convolution.toy.ToyView` (needs its labels and canvases)."""

    @property
    def _captions(self):
        return self.input_caption, self.kernel_caption, self.output_caption

    @property
    def _canvases(self):
        return self.input_canvas, self.kernel_canvas, self.output_canvas

    def _columns(self, cell: float):
        """(canvas sizes, column widths, vertical offsets, grid height) at input/output cell ``cell``."""
        span = max(self.kernel_canvas.grid_shape)
        kernel_cell = max(cell, min(KERNEL_MIN_CELL, KERNEL_MIN_SIDE / span))
        if kernel_cell >= 4:
            kernel_cell = float(int(kernel_cell))
        sizes = [canvas.size_for_cell(c) for canvas, c in zip(self._canvases, (cell, kernel_cell, cell))]
        widths = [max(w, CAPTION_MIN_WIDTH) for w, _ in sizes]
        top = max(canvas.shadow for canvas in self._canvases)  # the fronts of the grids line up
        offsets = [top - canvas.shadow for canvas in self._canvases]
        height = max(off + h for off, (_, h) in zip(offsets, sizes))
        return sizes, widths, offsets, height

    def _caption_height(self, widths) -> int:
        """Height of the caption row when each caption gets its column plus most of the gap beside it."""
        return max(label_height(c, w + COLUMN_GAP_MIN - 6, 2) for c, w in zip(self._captions, widths))

    def _fit(self, width: int, height: int):
        """Largest shared cell whose grids and captions fit ``width`` × ``height`` (binary search)."""
        def fits(cell):
            _, widths, _, grid = columns = self._columns(cell)
            caption = self._caption_height(widths)
            return sum(widths) + 2 * COLUMN_GAP_MIN <= width and caption + grid <= height, columns, caption

        lo, hi = 0, len(CELL_SIZES) - 1  # CELL_SIZES is decreasing: find the first that fits
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(CELL_SIZES[mid])[0]:
                hi = mid
            else:
                lo = mid + 1
        _, columns, caption = fits(CELL_SIZES[lo])
        return (*columns, caption)

    def _texts(self):
        """The labels under the grids, with the lines each keeps at least."""
        return ((self.legend_label, 1), (self.formula_label, 1), (self.note_label, 1), (self.readout_label, 2))

    def _arrange(self, width: int, height: int, apply: bool) -> int:
        """Grids (one shared cell size) under their captions, then legend, formula, note and readout;
        see :class:`~convviz.ui.widgets.grid_canvas.Stage`."""
        inner = width - 2 * MARGIN_X
        heights = [label_height(label, inner, lines) for label, lines in self._texts()]
        text = sum(heights) + TEXT_GAP * (len(heights) - 1)
        needed = 2 * MARGIN_Y + self._caption_height([(inner - 2 * COLUMN_GAP_MIN) // 3] * 3) + MIN_GRID \
            + GRID_GAP + text
        if not apply:
            return needed
        room = max(MIN_GRID, height - 2 * MARGIN_Y - GRID_GAP - text)
        sizes, widths, offsets, grid, caption = self._fit(inner, room)
        free = inner - sum(widths)
        gap = max(COLUMN_GAP_MIN, min(COLUMN_GAP_MAX, free / 2))
        x = MARGIN_X + max(0.0, (free - 2 * gap) / 2)
        for label, canvas, col, (w, h), off in zip(self._captions, self._canvases, widths, sizes, offsets):
            left = int(round(x))
            label.setGeometry(left - (COLUMN_GAP_MIN - 6) // 2, MARGIN_Y, col + COLUMN_GAP_MIN - 6, caption)
            canvas.setGeometry(left + (col - w) // 2, MARGIN_Y + caption + off, w, h)
            x += col + gap
        y = MARGIN_Y + caption + grid + GRID_GAP
        for (label, _), h in zip(self._texts(), heights):
            label.setGeometry(MARGIN_X, y, inner, h)
            y += h + TEXT_GAP
        self._readout_fits = len(self.readout_label.text())
        return needed
