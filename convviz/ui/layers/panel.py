"""The Layers tab: the module tree in model order beside the selected layer's maps and its labs.

Left, the tree (a container before its children; pass-through modules hidden on request).
Right, the layer's channels as a mosaic (or a bar chart for a vector), and under it the
:class:`~convviz.ui.layers.lab_host.LabHost` tabs: the chosen channel large, the first
layer's filters, and the labs added with :meth:`LayersPanel.add_lab`.
"""
from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSplitter, QStackedWidget,
    QVBoxLayout, QWidget,
)

from convviz.core.labs.names import LABS, first_row_for_lab
from convviz.core.views.layer import is_vector_shape
from convviz.ui.labs import LAB_WIDGETS
from convviz.ui.panel import Panel
from convviz.ui.widgets.mosaic_view import MosaicView
from convviz.ui.widgets.reflow import Reflow

from .exports import Exports
from .filters_view import FiltersView
from .lab_host import LabHost
from .look_labs import LookLabs
from .reveal import Reveal
from .tree_model import LayerFilter, LayerListModel, LayerTreeModel, default_layer, tree_view
from .vector_view import VectorView

#: Below this width (of the tab's viewport) the tree goes above the maps instead of beside them.
SIDE_BY_SIDE_MIN_WIDTH = 940

MOSAIC_KEY = "layers.mosaic"
VECTOR_KEY = "layers.vector"
COLUMN_WIDTHS = (110, 140, 92, 126, 40)  # k / s / p fits "5×5 / 2 / TF same 1/2"
MAPS_MIN_HEIGHT = 300  #: the mosaic's least height when the tree is above it


class LayersPanel(Panel):
    """Choose a layer in the tree; its channels arrive as the session's ``mosaic`` view."""

    layer_requested = Signal(str)
    failed = Signal(str)  #: a ``--layer`` / ``--lab`` wish that cannot be met, one line

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = LayerListModel(self)
        self.tree_model = LayerTreeModel(self.model, self)
        self.proxy = LayerFilter(self)
        self.proxy.setSourceModel(self.tree_model)
        self.current: str | None = None
        self.current_row = None
        self._wish: tuple[str | None, str | None] | None = None
        self._photo_rgb = None
        self._sized = False
        self._stale = False
        self._pinned = False  #: keep the lab tabs in view (see reveal_labs)
        self._filtering = False  #: the tree's current row moves while the filter changes: not the user's choice
        self._watching = False

        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name or type (conv_dw, BatchNorm, blocks.3)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter)
        self.filter.returnPressed.connect(self._jump_to_match)
        self.filter.setToolTip("Selects the best match as you type (exact path, then path prefix, then any part "
                               "of the path or type); Enter jumps to it in the tree")
        self.hide_box = QCheckBox("Hide pass-through modules")
        self.hide_box.setToolTip("Hide modules that hand their input on unchanged at inference "
                                 "(Identity placeholders such as drop, aa, se; Dropout; DropPath)")
        self.hide_box.setChecked(True)
        self.hide_box.toggled.connect(self._on_hide)
        self.count = QLabel("no model")
        self.count.setStyleSheet("color: #666;")
        self.tree = tree_view(self.proxy, COLUMN_WIDTHS)
        self.tree.selectionModel().currentRowChanged.connect(self._on_row_changed)

        self.mosaic = MosaicView()
        self.vector = VectorView()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.mosaic)
        self.stack.addWidget(self.vector)
        self.filters = FiltersView()
        self.labs = LabHost()
        self.labs.add_fixed("channel", "Channel", self.mosaic.channel)
        self.labs.add_lab("filters", "First-layer filters", self.filters)
        for name, title, lab_class in LAB_WIDGETS:  # ReLU, pooling, dropout, 1×1: what each stage does
            lab = lab_class()
            self.labs.add_lab(name, title, lab)
            lab.ready.connect(lambda: self._emit_ready())
        self.look = LookLabs(self)  # Top patches, Effective field: tasks, following the mosaic's channel
        self.labs.tabBarClicked.connect(self._on_lab_tab_clicked)
        self.exports = Exports(self)
        self.reveal = Reveal(self, self.labs)
        self._build_layout()
        self.mosaic.unit_hovered.connect(self.unit_hovered)
        self.labs.unit_hovered.connect(self.unit_hovered)
        self.filters.channel_requested.connect(self.mosaic.select_channel)
        self.mosaic.channel_changed.connect(self.filters.select)
        self.filters.changed.connect(self._show_filters_beside_first_conv)
        self.mosaic.channel.overlay.toggled.connect(lambda _on: self._update_photo())
        for keys, step in (("Alt+Down", 1), ("Alt+Up", -1)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda s=step: self.step_layer(s))

    def _build_layout(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(4)
        heading = QLabel("Layers in model order")
        heading.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.count.setWordWrap(True)
        left_layout.addWidget(heading)
        left_layout.addWidget(self.count)
        left_layout.addWidget(self.filter)
        left_layout.addWidget(self.hide_box)
        left_layout.addWidget(self.tree, 1)
        hint = QLabel("↑/↓ in the tree (Alt+↑/↓ anywhere here) step through the layers.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #666;")
        left_layout.addWidget(hint)

        export_row = QHBoxLayout()
        export_row.setSpacing(6)
        export_row.addWidget(QLabel("Save"))
        for text, slot, tip in (("Mosaic PNG…", self.exports.ask_mosaic, "The mosaic as shown, one pixel per unit"),
                                ("Channel PNG…", self.exports.ask_channel, "The chosen channel, colour-mapped"),
                                ("Values .npy…", self.exports.ask_values, "The layer's raw output, float32")):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            export_row.addWidget(button)
        export_row.addStretch(1)
        top_right = QWidget()
        top_layout = QVBoxLayout(top_right)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(4)
        top_layout.addWidget(self.stack, 1)
        top_layout.addLayout(export_row)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top_right)
        right.addWidget(self.labs)
        right.setChildrenCollapsible(False)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        self.right = right
        self._maps = top_right
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        self.splitter = splitter
        self._left = left
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)
        self.reflow = Reflow(self, SIDE_BY_SIDE_MIN_WIDTH, self._reflow)

    def _reflow(self, narrow: bool) -> None:
        """Tree beside the maps when there is room; above them (the tab scrolls down) on a small screen."""
        self.splitter.setOrientation(Qt.Orientation.Vertical if narrow else Qt.Orientation.Horizontal)
        self._left.setMinimumHeight(260 if narrow else 0)
        self._maps.setMinimumHeight(MAPS_MIN_HEIGHT if narrow else 0)  # the lab tabs below ask for their own

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._sized:  # the tree gets half of the first width shown; the user's drag wins afterwards
            self._sized = True
            width = self.splitter.width()
            self.splitter.setSizes([int(width * 0.5), width - int(width * 0.5)])

    # ---- labs ------------------------------------------------------------------------
    def set_frozen(self, names) -> None:
        """Mark the layers the Fine-tune panel's choice freezes (❄ in the tree)."""
        self.tree_model.set_frozen(names)
        self.tree.viewport().update()

    def add_lab(self, name: str, title: str, widget) -> None:
        """Add a lab tab (see :mod:`convviz.ui.layers.lab_host` for what ``widget`` provides)."""
        self.labs.add_lab(name, title, widget)

    def _on_lab_tab_clicked(self, index: int) -> None:
        if self.labs.isTabEnabled(index):  # the tab becomes current after this signal: reveal it now
            self.labs.setCurrentIndex(index)
            self.reveal_labs()

    def reveal_labs(self) -> None:
        """Scroll the tab to the lab tabs and keep them in view while they settle (see :mod:`.reveal`)."""
        self.reveal.reveal()

    # ---- session --------------------------------------------------------------------
    def bind(self, session) -> None:
        super().bind(session)
        session.layers_ready.connect(self.set_rows)
        session.views_stale.connect(self._on_stale)
        session.view_ready.connect(self._on_view)
        session.view_failed.connect(self._on_view_failed)
        session.image_loaded.connect(lambda _image: self._update_photo())
        session.model_loaded.connect(lambda _info: self._update_photo())
        self.labs.bind(session)
        self.look.bind(session)

    def _on_stale(self) -> None:
        self._stale = True  # not ready until the current layer's maps for the new image or model are in
        self.mosaic.mark_stale()
        self.labs.mark_stale()

    def _update_photo(self) -> None:
        """The model-input picture for the channel overlay (made only while the overlay is on)."""
        s = self.session
        self._photo_rgb = None
        if self.mosaic.channel.overlay.isChecked() and s.image is not None and s.model_info is not None:
            self._photo_rgb = s.model_info.preprocess.to_uint8(s.image.rgb)  # the photo as the model sees it
        self.mosaic.channel.set_field(self.current_row, self._photo_rgb)

    def _on_view(self, key: str, data) -> None:
        if key == MOSAIC_KEY and data.layer == self.current:
            self._stale = False
            self.mosaic.set_activation(data.layer, data.maps, data.shape, self._type_of(data.layer))
            self._emit_ready()
        elif key == VECTOR_KEY and data.layer == self.current:
            self.vector.set_vector(data, self._type_of(data.layer))
            self._emit_ready()
        elif self.is_ready():
            self._emit_ready()

    def _emit_ready(self) -> None:
        if self.is_ready():
            self.ready.emit()

    def _on_view_failed(self, key: str, message: str) -> None:
        if key == MOSAIC_KEY:
            self.mosaic.clear(f"{self.current}: {message}")

    def is_ready(self) -> bool:
        if self._stale or self.current is None or self.mosaic.maps is None or self.mosaic.name != self.current:
            return False
        if self._is_vector() and (self.vector.data is None or self.vector.data.layer != self.current):
            return False
        return self.labs.current_ready()

    def shortcuts(self) -> list[tuple[str, str]]:
        return [("↑ / ↓", "previous / next layer (tree focused)"), ("Alt+↑ / Alt+↓", "previous / next layer")]

    # ---- rows and selection ---------------------------------------------------------
    def set_rows(self, rows) -> None:
        """Show a new model's layers; keeps the selected layer if the new model has it."""
        keep = self.current if self.current and any(r.name == self.current for r in rows) else None
        self.current = None
        self.model.set_rows(rows)
        self.tree.expandAll()
        self.mosaic.clear()
        self.vector.clear()
        self._update_count()
        if self._wish is not None:
            self._apply_wish()
            return
        name = keep or default_layer(rows)
        if name:
            self.select_layer(name)

    def show_on_load(self, layer: str | None = None, lab: str | None = None) -> None:
        """Select ``layer`` and lab tab ``lab`` when the model's layers arrive (``--layer`` / ``--lab``)."""
        self._wish = (layer, lab)
        if self.model.rows:
            self._apply_wish()

    def _apply_wish(self) -> None:
        layer, lab = self._wish
        self._wish = None
        if lab is not None and lab not in self.labs.lab_names():
            here = ", ".join(self.labs.lab_names())
            self.failed.emit(f"--lab {lab}: no such lab in the Layers panel (available: {here})")
            return
        if layer is None and lab is not None:  # a core lab: the core's choice (a real pooling layer first …)
            widget = self.labs.lab(lab)
            layer = (first_row_for_lab(self.model.rows, lab) if lab in LABS
                     else next((r.name for r in self.model.rows if widget.applies_to(r)), None))
            if layer is None:
                self.failed.emit(f"--lab {lab}: no layer of this model where that lab applies")
                return
        layer = layer or default_layer(self.model.rows)
        if not self.select_layer(layer):
            examples = ", ".join(r.name for r in self.model.rows[:3])
            self.failed.emit(f"--layer {layer}: no such layer in this model (e.g. {examples})")
            return
        if lab is not None and not self.labs.select(lab):
            self.failed.emit(f"--lab {lab}: does not apply to layer {layer}")
        elif lab is not None:
            self.reveal_labs()

    def select_layer(self, name: str) -> bool:
        """Select ``name`` in the tree (showing it if the filter hid it); emits the request."""
        node = self.model.tree.node(name)
        if node is None:
            return False
        if node.pass_through and self.hide_box.isChecked():
            self.hide_box.setChecked(False)
        index = self.proxy.mapFromSource(self.tree_model.index_of(name))
        if not index.isValid():
            self.filter.clear()
            index = self.proxy.mapFromSource(self.tree_model.index_of(name))
        self.tree.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.tree.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        if self.current != name:
            self._request(name)
        return True

    def step_layer(self, delta: int) -> str | None:
        """Select the layer ``delta`` places away in model order (skipping hidden pass-through modules)."""
        if self.current is None:
            return None
        name = self.model.tree.step(self.current, delta, skip_pass_through=self.hide_box.isChecked())
        if name is not None:
            self.select_layer(name)
        return name

    def _type_of(self, name: str) -> str:
        node = self.model.tree.node(name)
        return node.row.type if node is not None else ""

    def _is_vector(self) -> bool:
        return self.current_row is not None and is_vector_shape(self.current_row.out_shape)

    def _request(self, name: str) -> None:
        self.reveal.unpin()
        self.current = name
        node = self.model.tree.node(name)
        self.current_row = node.row if node is not None else None
        self.layer_requested.emit(name)
        vector = self._is_vector()
        self.stack.setCurrentWidget(self.vector if vector else self.mosaic)
        self.mosaic.channel.set_field(self.current_row, self._photo_rgb)
        self.labs.set_layer(name, self.current_row)
        self.labs.set_fixed_enabled("channel", not vector)  # a vector has no map to enlarge
        self._show_filters_beside_first_conv()
        if self.session is None:
            return
        self.session.request_view(MOSAIC_KEY, "mosaic", name)
        if vector:
            self.session.request_view(VECTOR_KEY, "vector", name)
        else:
            self.session.drop_view(VECTOR_KEY)

    def _show_filters_beside_first_conv(self) -> None:
        if self.labs.tab_name() == "channel" and self.labs.applies("filters"):
            self.labs.select("filters")

    def _on_row_changed(self, current, _previous) -> None:
        if current.isValid() and not self._filtering:
            name = self.proxy.data(current, Qt.ItemDataRole.UserRole)
            if name and name != self.current:
                self._request(name)

    def _on_filter(self, text: str) -> None:
        """Filter the tree and select the best match (the current layer again once the text is gone)."""
        self._filtering = True
        try:
            self.proxy.set_text(text)
            self.tree.expandAll()
        finally:
            self._filtering = False
        self._update_count()
        if text.strip():
            name = self.proxy.best_match(self.model.tree.order, self.current)
        else:  # the current layer, if the tree shows it
            shown = self.current and self.proxy.mapFromSource(self.tree_model.index_of(self.current)).isValid()
            name = self.current if shown else None
        if name is not None:
            self.select_layer(name)

    def _jump_to_match(self) -> None:
        """Enter in the filter: select the best match and hand the keys to the tree (↑/↓ step on)."""
        name = self.proxy.best_match(self.model.tree.order, self.current)
        if name is not None and self.select_layer(name):
            self.tree.setFocus()

    def _on_hide(self, hide: bool) -> None:
        self.proxy.set_hide_pass_through(hide)
        self.tree.expandAll()
        self._update_count()
        if self.current:
            index = self.proxy.mapFromSource(self.tree_model.index_of(self.current))
            if index.isValid():
                self.tree.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = sum(1 for node in self.model.tree.order if self.proxy.accepts(node))
        hidden = sum(1 for node in self.model.tree.order if node.pass_through)
        text = f"{total} layers" if shown == total else f"{shown} of {total} layers"
        if self.hide_box.isChecked() and hidden:
            text += f" ({hidden} pass-through hidden)"
        self.count.setText(text)
