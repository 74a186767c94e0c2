"""The Layers tab: the filterable layer table beside the mosaic of the selected layer."""
from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from convviz.ui.panel import Panel
from convviz.workers.results import ChannelStats

from convviz.ui.layers.table_model import LayerFilter, LayerTableModel
from convviz.ui.widgets.mosaic_view import MosaicView

#: Types whose output is worth showing first when a model arrives.
_DEFAULT_TYPES = ("Conv2d", "Conv2dSame", "Conv2dNormActivation")


def default_layer(rows) -> str | None:
    """The first convolution with a spatial output (else the first spatial layer)."""
    spatial = [r for r in rows if len(r.out_shape) == 3]
    for row in spatial:
        if row.type in _DEFAULT_TYPES:
            return row.name
    return spatial[0].name if spatial else (rows[0].name if rows else None)


MOSAIC_KEY = "layers.mosaic"


class LayersPanel(Panel):
    """Choose a layer in the table; its channels arrive as the session's ``mosaic`` view."""

    layer_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = LayerTableModel(self)
        self.proxy = LayerFilter(self)
        self.proxy.setSourceModel(self.model)
        self.current: str | None = None

        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name or type (e.g. conv_dw, BatchNorm, blocks.3)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter)
        self.count = QLabel("no model")
        self.count.setStyleSheet("color: #666;")

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setHighlightSections(False)
        for column, width in enumerate((200, 150, 104, 64, 60, 70, 70, 76, 56)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_changed)

        self.mosaic = MosaicView()

        left = QWidget()
        left.setMinimumHeight(160)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(6)
        heading = QLabel("Layer table")
        heading.setStyleSheet("font-size: 11pt; font-weight: 600;")
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(self.count)
        left_layout.addLayout(top)
        left_layout.addWidget(self.filter)
        left_layout.addWidget(self.table, 1)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(left)
        splitter.addWidget(self.mosaic)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([300, 440])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(splitter)

    # ---- session --------------------------------------------------------------------
    def bind(self, session) -> None:
        super().bind(session)
        session.layers_ready.connect(self.set_rows)
        session.views_stale.connect(self.mosaic.mark_stale)
        session.view_ready.connect(self._on_view)
        session.view_failed.connect(self._on_view_failed)
        self.mosaic.unit_hovered.connect(self.unit_hovered)

    def _on_view(self, key: str, data) -> None:
        if key == MOSAIC_KEY:
            stats = ChannelStats(data.minimum, data.maximum, data.mean, data.tile_hw, data.gap)
            self.set_activation(data.layer, data.mosaic, data.shape, stats)
            self.ready.emit()

    def _on_view_failed(self, key: str, message: str) -> None:
        if key == MOSAIC_KEY:
            self.mosaic.clear(f"{self.current}: {message}")

    def is_ready(self) -> bool:
        return self.mosaic.mosaic is not None and self.mosaic.name == self.current

    def set_rows(self, rows) -> None:
        """Show a new model's layers; keeps the selected layer if the new model has it."""
        keep = self.current if self.current and any(r.name == self.current for r in rows) else None
        self.current = None
        self.model.set_rows(rows)
        self.mosaic.clear()
        self._update_count()
        name = keep or default_layer(rows)
        if name:
            self.select_layer(name)

    def select_layer(self, name: str) -> bool:
        """Select ``name`` in the table (clearing the filter if it hides it); emits the request."""
        source = self.model.row_of(name)
        if source < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(source, 0))
        if not index.isValid():
            self.filter.clear()
            index = self.proxy.mapFromSource(self.model.index(source, 0))
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        if self.current != name:  # currentRowChanged did not fire (same row index)
            self._request(name)
        return True

    def set_activation(self, name: str, mosaic, shape, stats) -> None:
        """A mosaic from the worker; ignored unless it is the selected layer's."""
        if name != self.current:
            return
        source = self.model.row_of(name)
        type_name = self.model.rows[source].type if source >= 0 else ""
        self.mosaic.set_activation(name, mosaic, shape, stats, type_name)

    def _request(self, name: str) -> None:
        self.current = name
        self.layer_requested.emit(name)
        if self.session is not None:
            self.session.request_view(MOSAIC_KEY, "mosaic", name)

    def _on_row_changed(self, current, _previous) -> None:
        if current.isValid():
            name = self.proxy.data(current, Qt.ItemDataRole.UserRole)
            if name and name != self.current:
                self._request(name)

    def _on_filter(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        self.count.setText(f"{total} layers" if shown == total else f"{shown} of {total} layers")
