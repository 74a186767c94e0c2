"""Where the real layer's parts go: input and output maps side by side on top; under them
the window × weights (with numbers legible in 5×5 and 7×7 windows), the legend and the
readout of the dot product. Mixed into :class:`~convviz.ui.convolution.real.RealView`.
"""
from __future__ import annotations

from convviz.ui.widgets.grid_canvas import GridCanvas
from convviz.ui.widgets.stage_layout import label_height

# Stage geometry (px): the two maps side by side take what the window × weights row and the text leave.
MARGIN_X, MARGIN_Y, COLUMN_GAP, ROW_GAP = 12, 10, 18, 10
MAP_MAX_CELL, MIN_MAP = 44, 140
SMALL_MIN, SMALL_MAX, TIMES_WIDTH = 72, 150, 28  # the window and weights grids, and the × between them
LEGEND_MIN = 150  # the legend beside a big window × weights row gets at least this width
NUMBER_CELL = 34  # a window cell needs this many px for "−0.12" to be legible; 5×5 and 7×7 get a wider row


class RealLayout:
    """Stage geometry of :class:`~convviz.ui.convolution.real.RealView` (needs its labels and canvases)."""

    # ---- stage geometry ------------------------------------------------------------
    @staticmethod
    def _map_height(canvas: GridCanvas, width: int, height: int, max_cell: float = MAP_MAX_CELL) -> int:
        """Height ``canvas`` uses when its grid is fitted into ``width`` × ``height``."""
        rows, cols = canvas.grid_shape
        cell = max(0.5, min((width - 8) / cols, (height - 8) / rows, max_cell))
        if cell >= 4:
            cell = float(int(cell))
        return canvas.size_for_cell(cell)[1]

    def _arrange(self, width: int, height: int, apply: bool) -> int:
        """Maps side by side on top; under the input map the window × weights and the legend,
        under the output map the readout of the dot product."""
        inner = width - 2 * MARGIN_X
        column = (inner - COLUMN_GAP) // 2
        caption = max(label_height(c, column, 2) for c in (self.input_caption, self.output_caption))
        side = max(SMALL_MIN, min(SMALL_MAX, (column - TIMES_WIDTH) // 2))
        need = max(self.window_canvas.grid_shape) * NUMBER_CELL + 8
        if self.data is not None and need > side:
            return self._arrange_wide(inner, column, caption, height, min(need, (inner - TIMES_WIDTH - COLUMN_GAP - LEGEND_MIN) // 2), apply)
        small = max(self._map_height(c, side, side, 48) for c in (self.window_canvas, self.kernel_canvas))
        wide = side + TIMES_WIDTH // 2  # a small caption may use half the × column
        small_caption = max(label_height(c, wide, 2) for c in (self.window_caption, self.kernel_caption))
        legend = label_height(self.legend_label, column, 1)
        left = small_caption + small + ROW_GAP + legend
        bottom = max(left, label_height(self.readout_label, column, 3))
        fixed = 2 * MARGIN_Y + caption + ROW_GAP + bottom
        if not apply:
            return fixed + MIN_MAP
        room = max(MIN_MAP, height - fixed)
        maps = max(self._map_height(c, column, room) for c in (self.input_canvas, self.output_canvas))
        y = self._place_maps(column, caption, maps)
        x = MARGIN_X + (column - 2 * side - TIMES_WIDTH) // 2
        self.window_caption.setGeometry(x - TIMES_WIDTH // 4, y, wide, small_caption)
        self.window_canvas.setGeometry(x, y + small_caption, side, small)
        self.times_label.setGeometry(x + side, y + small_caption, TIMES_WIDTH, small)
        self.kernel_caption.setGeometry(x + side + TIMES_WIDTH * 3 // 4, y, wide, small_caption)
        self.kernel_canvas.setGeometry(x + side + TIMES_WIDTH, y + small_caption, side, small)
        self.legend_label.setGeometry(MARGIN_X, y + small_caption + small + ROW_GAP, column, legend)
        if self.data is None:  # only a message: across the stage, at the top
            self.readout_label.setGeometry(MARGIN_X, MARGIN_Y, inner, label_height(self.readout_label, inner, 3))
        else:
            self.readout_label.setGeometry(MARGIN_X + column + COLUMN_GAP, y, column, bottom)
        self._fits = {label: len(label.text()) for label in (self.readout_label, self.window_caption)}
        return fixed + MIN_MAP

    def _place_maps(self, column: int, caption: int, maps: int) -> int:
        """Input and output maps side by side under their captions; returns the y below them."""
        for i, (label, canvas) in enumerate(((self.input_caption, self.input_canvas),
                                             (self.output_caption, self.output_canvas))):
            x = MARGIN_X + i * (column + COLUMN_GAP)
            label.setGeometry(x, MARGIN_Y, column, caption)
            canvas.setGeometry(x, MARGIN_Y + caption, column, maps)
        return MARGIN_Y + caption + maps + ROW_GAP

    def _arrange_wide(self, inner: int, column: int, caption: int, height: int, side: int, apply: bool) -> int:
        """Layout for 5×5 and larger windows: maps on top, then window × weights big enough for
        legible numbers with the legend beside them, and the readout across the stage below."""
        small = max(self._map_height(c, side, side, 48) for c in (self.window_canvas, self.kernel_canvas))
        wide = side + TIMES_WIDTH // 2
        small_caption = max(label_height(c, wide, 2) for c in (self.window_caption, self.kernel_caption))
        row = 2 * side + TIMES_WIDTH
        legend_width = inner - row - COLUMN_GAP
        legend = label_height(self.legend_label, legend_width, 1)
        readout = label_height(self.readout_label, inner, 3)
        fixed = 2 * MARGIN_Y + caption + ROW_GAP + small_caption + small + ROW_GAP + readout
        if not apply:
            return fixed + MIN_MAP
        room = max(MIN_MAP, height - fixed)
        maps = max(self._map_height(c, column, room) for c in (self.input_canvas, self.output_canvas))
        y = self._place_maps(column, caption, maps)
        x = MARGIN_X
        self.window_caption.setGeometry(x, y, wide, small_caption)
        self.window_canvas.setGeometry(x, y + small_caption, side, small)
        self.times_label.setGeometry(x + side, y + small_caption, TIMES_WIDTH, small)
        self.kernel_caption.setGeometry(x + side + TIMES_WIDTH * 3 // 4, y, wide, small_caption)
        self.kernel_canvas.setGeometry(x + side + TIMES_WIDTH, y + small_caption, side, small)
        self.legend_label.setGeometry(x + row + COLUMN_GAP, y + small_caption, legend_width, legend)
        self.readout_label.setGeometry(MARGIN_X, y + small_caption + small + ROW_GAP, inner, readout)
        self._fits = {label: len(label.text()) for label in (self.readout_label, self.window_caption)}
        return fixed + MIN_MAP

