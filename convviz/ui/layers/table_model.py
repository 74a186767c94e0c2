"""The layer table as a Qt item model: one row per module call, named by its module path."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt

COLUMNS = ("Name", "Type", "Output", "Kernel", "Stride", "Padding", "Dilation", "RF", "Jump")
COLUMN_TIPS = (
    "Module path from model.named_modules(); ':2' marks a module's second call",
    "Module class",
    "Output shape of one image: channels × height × width",
    "Window size (height × width) of a convolution or pooling",
    "Step of the window, in input cells",
    "Cells added around the input (top/bottom × left/right)",
    "Spacing between kernel taps",
    "Receptive field: input pixels one output unit sees (height × width)",
    "Jump: input pixels between neighbouring output units",
)


def _num(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _pair(value, square: bool = False) -> str:
    """(3, 3) → '3×3' when ``square`` else '3'; (3, 1) → '3×1'; None → ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if value[0] == value[1] and not square:
            return _num(value[0])
        return f"{_num(value[0])}×{_num(value[1])}"
    return "×".join(_num(v) for v in value) if isinstance(value, (tuple, list)) else _num(value)


def cell_text(row, column: int) -> str:
    """Display text of ``row`` (a LayerRow) in ``column``."""
    if column == 0:
        return row.name
    if column == 1:
        groups = getattr(row, "groups", None)
        return f"{row.type} (g={groups})" if groups and groups > 1 else row.type
    if column == 2:
        return "×".join(str(n) for n in row.out_shape)
    values = (row.kernel, row.stride, row.padding, row.dilation, row.rf, row.jump)
    return _pair(values[column - 3], square=column in (3, 7))


def row_tooltip(row) -> str:
    lines = [f"<b>{row.name}</b> — {row.type}", f"output {cell_text(row, 2)}", f"{row.params:,} parameters"]
    if row.rf is not None:
        lines.append(f"receptive field {cell_text(row, 7)} px, jump {cell_text(row, 8)} px, "
                     f"unit 0 centred at ({_num(row.start[0])}, {_num(row.start[1])})")
    return "<br>".join(lines)


class LayerTableModel(QAbstractTableModel):
    """Read-only rows of the layer table."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list = []

    def set_rows(self, rows) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(row, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return row_tooltip(row)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 2:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row.name
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def row_of(self, name: str) -> int:
        """Source row of layer ``name`` (-1 if absent)."""
        return next((i for i, r in enumerate(self.rows) if r.name == name), -1)


class LayerFilter(QSortFilterProxyModel):
    """Keeps rows whose name or type contains the filter text (case-insensitive)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._needle = ""

    def set_text(self, text: str) -> None:
        self._needle = text.strip().lower()
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row, source_parent) -> bool:  # noqa: N802
        if not self._needle:
            return True
        row = self.sourceModel().rows[source_row]
        return self._needle in row.name.lower() or self._needle in row.type.lower()
