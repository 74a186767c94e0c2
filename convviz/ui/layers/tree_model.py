"""The layers as Qt item models: a flat list in model order, the module tree over it, and its filter.

``LayerListModel`` holds the rows (one per module call, in the order the calls start);
``LayerTreeModel`` shows them nested under their containers; ``LayerFilter`` hides
pass-through modules and filters by name or type (a container stays while a child matches).
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QAbstractListModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

from convviz.core.capture.layer_tree import DROPOUT_NOTE, LayerTree, build_tree, is_dropout, short_name

COLUMNS = ("Layer", "Type", "Output", "k / s / p", "RF")
COLUMN_TIPS = (
    "Module path from model.named_modules() (the tree shows the last part; ':2' marks a second call)",
    "Module class",
    "Output shape of one image: channels × height × width",
    "Kernel / stride / padding of a convolution or pooling: window size, its step, and the cells "
    "added around the input (a/b: before/after; 'TF same': split as TensorFlow's 'SAME', the odd cell after)",
    "Receptive field: pixels of the model input one output unit sees (height × width)",
)
PASS_THROUGH_COLOUR = QColor(140, 140, 140)
FROZEN_COLOUR = QColor(70, 110, 160)


def is_frozen(name: str, frozen: frozenset) -> bool:
    """True when module ``name`` or one of its containers is in ``frozen``."""
    parts = name.split(":")[0].split(".")
    return any(".".join(parts[:i]) in frozen for i in range(1, len(parts) + 1))


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


def type_text(row) -> str:
    groups = getattr(row, "groups", None)
    text = f"{row.type} (g={groups})" if groups and groups > 1 else row.type
    return f"{text} · off at inference" if is_dropout(row) else text


def cell_text(row, column: int, tree: bool = False) -> str:
    """Display text of ``row`` (a LayerRow) in ``column`` (the tree shows short names)."""
    if column == 0:
        return short_name(row.name) if tree else row.name
    if column == 1:
        return type_text(row)
    if column == 2:
        return "×".join(str(n) for n in row.out_shape)
    if column == 3:
        if row.kernel is None:
            return ""
        return f"{_pair(row.kernel, True)} / {_pair(row.stride)} / {row.padding_text}"
    return _pair(row.rf)  # "35" for a square field, "35×19" otherwise


def row_tooltip(row) -> str:
    lines = [f"<b>{row.name}</b> — {row.type}", f"output {cell_text(row, 2)}", f"{row.params:,} parameters"]
    if is_dropout(row):
        lines.append(f"Dropout {DROPOUT_NOTE}")
    elif row.type == "Identity":
        lines.append("Identity: returns its input unchanged (a placeholder for an optional stage)")
    if row.dilation is not None and tuple(row.dilation) != (1, 1):
        lines.append(f"dilation {_pair(row.dilation)}")
    if row.rf is not None:
        lines.append(f"receptive field {_pair(row.rf, True)} px, jump {_pair(row.jump)} px, "
                     f"unit 0 centred at ({_num(row.start[0])}, {_num(row.start[1])})")
    return "<br>".join(lines)


class LayerListModel(QAbstractListModel):
    """Every layer, one row each, in model order (a container before its children)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list = []
        self.tree: LayerTree = build_tree([])

    def set_rows(self, rows) -> None:
        self.beginResetModel()
        self.tree = build_tree(list(rows))
        self.rows = [node.row for node in self.tree.order]
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.UserRole):
            return row.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return row_tooltip(row)
        return None

    def row_of(self, name: str) -> int:
        """Row of layer ``name`` in model order (-1 if absent)."""
        return self.tree.position.get(name, -1)


class LayerTreeModel(QAbstractItemModel):
    """The module tree of a :class:`LayerListModel` (read-only; rebuilt when its rows change)."""

    def __init__(self, source: LayerListModel, parent=None):
        super().__init__(parent)
        self.source = source
        self.frozen: frozenset[str] = frozenset()  #: module paths the fine-tune choice freezes
        source.modelAboutToBeReset.connect(self.beginResetModel)
        source.modelReset.connect(self.endResetModel)

    def _children(self, parent: QModelIndex):
        return parent.internalPointer().children if parent.isValid() else self.source.tree.roots

    def index(self, row, column, parent=QModelIndex()):
        children = self._children(parent)
        if 0 <= row < len(children) and 0 <= column < len(COLUMNS):
            return self.createIndex(row, column, children[row])
        return QModelIndex()

    def parent(self, index=QModelIndex()):  # noqa: D401 (Qt API; also QObject.parent())
        if not index.isValid():
            return QModelIndex()
        up = index.internalPointer().parent
        return QModelIndex() if up is None else self.createIndex(up.position() if up.parent else
                                                                 self.source.tree.roots.index(up), 0, up)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._children(parent))

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node = index.internalPointer()
        frozen = bool(self.frozen) and is_frozen(node.name, self.frozen)
        if role == Qt.ItemDataRole.DisplayRole:
            text = cell_text(node.row, index.column(), tree=True)
            return f"{text}  ❄" if frozen and index.column() == 0 else text
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = row_tooltip(node.row)
            return f"{tip}\n❄ frozen by the Fine-tune choice: its weights do not train" if frozen else tip
        if role == Qt.ItemDataRole.UserRole:
            return node.name
        if role == Qt.ItemDataRole.ForegroundRole and frozen:
            return FROZEN_COLOUR
        if role == Qt.ItemDataRole.ForegroundRole and node.pass_through:
            return PASS_THROUGH_COLOUR
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 2:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def set_frozen(self, names) -> None:
        """Mark the modules whose weights the fine-tune choice freezes (❄ and a blue-grey name)."""
        self.frozen = frozenset(names)
        if self.rowCount():  # the view repaints from data() (see LayersPanel.set_frozen)
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(COLUMNS) - 1))

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def index_of(self, name: str) -> QModelIndex:
        node = self.source.tree.node(name)
        if node is None:
            return QModelIndex()
        position = node.position() if node.parent else self.source.tree.roots.index(node)
        return self.createIndex(position, 0, node)


class LayerFilter(QSortFilterProxyModel):
    """Hides pass-through modules (if asked) and keeps rows whose name or type contains the text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._needle = ""
        self.hide_pass_through = True
        self.setRecursiveFilteringEnabled(True)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().lower()
        self.endFilterChange()

    def set_hide_pass_through(self, hide: bool) -> None:
        self.beginFilterChange()
        self.hide_pass_through = bool(hide)
        self.endFilterChange()

    def accepts(self, node) -> bool:
        if self.hide_pass_through and node.pass_through:
            return False
        return not self._needle or self._needle in node.name.lower() or self._needle in node.row.type.lower()

    def rank(self, node) -> int | None:
        """How well ``node`` matches the text: 0 its exact path, 1 a path prefix, 2 in its path, 3 in its
        type; None: not at all (or a hidden pass-through module)."""
        if not self._needle or (self.hide_pass_through and node.pass_through):
            return None
        name = node.name.lower()
        if name == self._needle:
            return 0
        if name.startswith(self._needle):
            return 1
        if self._needle in name:
            return 2
        return 3 if self._needle in node.row.type.lower() else None

    def best_match(self, nodes, current: str | None = None) -> str | None:
        """The layer the text means: the best-ranked of ``nodes`` (model order), the ``current`` one on a tie."""
        best, best_rank = None, None
        for node in nodes:
            rank = self.rank(node)
            if rank is not None and (best_rank is None or rank < best_rank
                                     or (rank == best_rank and node.name == current)):
                best, best_rank = node.name, rank
        return best

    def filterAcceptsRow(self, source_row, source_parent) -> bool:  # noqa: N802
        index = self.sourceModel().index(source_row, 0, source_parent)
        return index.isValid() and self.accepts(index.internalPointer())


def tree_view(proxy, column_widths) -> QTreeView:
    """The layer tree's view on ``proxy``: whole rows, one selected, columns of these widths."""
    tree = QTreeView()
    tree.setModel(proxy)
    tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    tree.setAlternatingRowColors(True)
    tree.setUniformRowHeights(True)
    tree.setIndentation(12)
    tree.setWordWrap(False)
    header = tree.header()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    for column, width in enumerate(column_widths):
        tree.setColumnWidth(column, width)
    return tree


#: Types whose output is worth showing first when a model arrives.
_DEFAULT_TYPES = ("Conv2d", "Conv2dSame", "Conv2dNormActivation")


def default_layer(rows) -> str | None:
    """The first convolution with a spatial output in model order (else the first spatial layer)."""
    ordered = [node.row for node in build_tree(rows).order]
    spatial = [r for r in ordered if len(r.out_shape) == 3]
    for row in spatial:
        if row.type in _DEFAULT_TYPES:
            return row.name
    return spatial[0].name if spatial else (ordered[0].name if ordered else None)
