"""The main window: photo and predictions on the left, the panels of the registry in tabs.

It only displays what the :class:`~convviz.workers.session.Session` delivers and forwards
the user's intent (open, paste, drop, pick a model) to it. The tabs come from
:data:`convviz.ui.registry.PANELS`; each panel binds itself to the session.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QRect, Qt, Signal
from PySide6.QtWidgets import (
    QApplication, QFileDialog, QMainWindow, QMessageBox, QSplitter, QTabWidget, QWidget,
)

from convviz.core.images import ImageError, image_from_array
from convviz.ui.registry import PANELS, panel_names
from convviz.ui.settings import KEY_GEOMETRY, KEY_IMAGE, KEY_MODEL, KEY_TAB, app_settings, sample_path
from convviz.ui.widgets.image_view import qimage_to_array
from convviz.ui.widgets.model_picker import choose_model_file, confirm_pickled_model
from convviz.ui.widgets.save import save_png
from convviz.ui.widgets.sections import scrollable
from convviz.ui.widgets.side_column import SideColumn
from convviz.ui.widgets.status_bar import StatusFields
from convviz.ui.window_geometry import fits, place_on_screen
from convviz.ui.window_menus import build_actions, show_about, show_shortcuts
from convviz.workers.session import Session

VIEWS = panel_names()
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"
DEFAULT_SIZE = (1400, 880)
PREDICTIONS_KEY = "predictions"
CLOSE_GRACE_S = 0.3  #: how long closing the window waits for cancelled work before the app ends anyway
#: The left column's share of the window width, and its bounds in pixels.
SIDE_SHARE, SIDE_MIN, SIDE_MAX = 0.26, 240, 440
WINDOW_KEYS = (("Ctrl+O", "open an image"), ("Ctrl+V", "paste an image"), ("Ctrl+Shift+O", "open a model file"),
               ("Ctrl+L", "show / hide the photo column"), ("Ctrl+Q", "quit"))


class MainWindow(QMainWindow):
    """convviz's window; ``start()`` loads the first image and model."""

    first_painted = Signal()

    def __init__(self, session: Session | None = None, *, settings=None, persist: bool = True, lazy: bool = False):
        """``lazy``: build only the tab on show now and the others at :meth:`build_all_panels` (the app
        calls it right after the first paint, before any image or model loads)."""
        super().__init__()
        self._lazy = lazy
        self.session = session or Session(self)
        self.settings = settings if settings is not None else app_settings()
        self.persist = persist
        self.last_error: str | None = None
        self._painted = False
        self._closed = False
        self._fallback_model: str | None = None
        self.setWindowTitle("convviz")
        self.resize(*DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self._build_panels()
        build_actions(self)
        self.status = StatusFields(self.statusBar())
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, "convviz", "", QMessageBox.StandardButton.Ok, self)
        self.error_box.setWindowModality(Qt.WindowModality.WindowModal)
        self.error_box.setTextFormat(Qt.TextFormat.PlainText)
        self._connect_session()
        if self.persist:
            self._restore_window()

    # ------------------------------------------------------------------ layout
    def _build_panels(self) -> None:
        self.side = SideColumn()
        self.photo, self.predictions = self.side.photo, self.side.predictions
        self.panels = {}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for i, entry in enumerate(PANELS):
            if self._lazy and i:
                self.tabs.addTab(QWidget(), entry.title)  # built by panel(), at the latest after the first paint
            else:
                self.tabs.addTab(scrollable(self._new_panel(entry)), entry.title)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.side)
        self.splitter.addWidget(self.tabs)
        self.splitter.setCollapsible(0, True)
        self.splitter.setCollapsible(1, False)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self._fit_side(DEFAULT_SIZE[0])

    def _new_panel(self, entry):
        panel = entry.load()()
        panel.setObjectName(f"panel-{entry.name}")
        panel.bind(self.session)
        panel.unit_hovered.connect(self._on_unit_hovered)
        panel.open_image_requested.connect(self.open_image)
        self.panels[entry.name] = panel
        finetune, layers = self.panels.get("finetune"), self.panels.get("layers")
        if entry.name in ("finetune", "layers") and finetune is not None and layers is not None:
            finetune.frozen_layers_changed.connect(layers.set_frozen)  # frozen layers are marked in the tree
        if entry.name == "where":  # a click on a predicted class shows its Grad-CAM there
            panel.watch_predictions(self.predictions)
        return panel

    def panel(self, name: str):
        """The panel ``name``, built now if it was not yet (see ``lazy``)."""
        if name not in self.panels:
            index = VIEWS.index(name)
            current = self.tabs.currentIndex()
            self.tabs.blockSignals(True)
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, scrollable(self._new_panel(PANELS[index])), PANELS[index].title)
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(False)
        return self.panels[name]

    def build_all_panels(self) -> None:
        for name in VIEWS:
            self.panel(name)

    @property
    def conv_panel(self):
        return self.panel("convolution") if "convolution" in VIEWS else None

    @property
    def layers_panel(self):
        return self.panel("layers") if "layers" in VIEWS else None

    def _fit_side(self, width: int) -> None:
        """Give the photo column its share of ``width`` (within bounds) unless the user collapsed it."""
        if self.splitter.sizes() and self.splitter.sizes()[0] == 0 and self._painted:
            return
        side = int(min(SIDE_MAX, max(SIDE_MIN, width * SIDE_SHARE)))
        self.splitter.setSizes([side, max(1, width - side)])

    def toggle_side(self) -> None:
        """Collapse or restore the photo column (Ctrl+L)."""
        sizes = self.splitter.sizes()
        if sizes[0] > 0:
            self.splitter.setSizes([0, sum(sizes)])
        else:
            side = int(min(SIDE_MAX, max(SIDE_MIN, sum(sizes) * SIDE_SHARE)))
            self.splitter.setSizes([side, sum(sizes) - side])

    def _connect_session(self) -> None:
        s = self.session
        s.busy.connect(self.status.set_busy)
        s.idle.connect(self.status.set_idle)
        s.image_loaded.connect(self._on_image_loaded)
        s.image_failed.connect(self.show_error)
        s.model_loaded.connect(self._on_model_loaded)
        s.model_failed.connect(self._on_model_failed)
        s.model_needs_trust.connect(self._on_model_needs_trust)
        s.views_stale.connect(self._on_views_stale)
        s.view_ready.connect(self._on_view)
        s.view_failed.connect(self._on_view_failed)
        s.request_view(PREDICTIONS_KEY, "predictions")
        self.tabs.currentChanged.connect(self._on_tab_changed)

    # ----------------------------------------------------------------- intents
    def start(self, image_path: str | None = None, model_spec: str | None = None, allow_pickle: bool = False,
              restore: bool = True) -> None:
        """Load the first image and model: arguments, else the last ones, else cat + default."""
        if image_path is None and restore:
            last = self.settings.value(KEY_IMAGE, "", str)
            image_path = last if last and os.path.isfile(last) else None
        if model_spec is None:
            model_spec = self.settings.value(KEY_MODEL, "", str) if restore else ""
            self._fallback_model = "default" if model_spec and model_spec != "default" else None
        self.open_image(image_path or sample_path("cat"))
        self.load_model(model_spec or "default", allow_pickle)

    def open_image(self, path: str) -> None:
        self.session.open_image(path)

    def load_model(self, spec: str, allow_pickle: bool = False) -> None:
        self.picker.set_spec(spec)
        self.session.load_model(spec, allow_pickle)

    def set_view(self, name: str) -> None:
        """Show the panel ``name`` (one of :data:`VIEWS`)."""
        self.panel(name)
        self.tabs.setCurrentIndex(VIEWS.index(name))

    def current_view(self) -> str:
        return VIEWS[self.tabs.currentIndex()]

    def current_panel(self):
        return self.panel(self.current_view())

    def choose_image(self) -> None:
        start = os.path.dirname(self.settings.value(KEY_IMAGE, "", str) or sample_path("cat"))
        path, _ = QFileDialog.getOpenFileName(self, "Open image", start, IMAGE_FILTER)
        if path:
            self.open_image(path)

    def choose_model_file(self) -> None:
        path = choose_model_file(self)
        if path:
            self.load_model(path)

    def paste_image(self) -> None:
        """Use the clipboard's image (or an image file path / URL on it)."""
        mime = QApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            try:
                self.session.set_image(image_from_array(qimage_to_array(QApplication.clipboard().image())))
            except ImageError as exc:
                self.show_error(str(exc))
            return
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime is not None and mime.hasUrls() else []
        text = mime.text().strip() if mime is not None and mime.hasText() else ""
        if not paths and text and os.path.isfile(text):
            paths = [text]
        if paths:
            self.open_image(paths[0])
        else:
            self.show_error("The clipboard holds no image.")

    def export_window(self, path: str | None = None) -> bool:
        path = path or QFileDialog.getSaveFileName(self, "Export window", "convviz.png", "PNG (*.png)")[0]
        return bool(path) and self._saved(save_png(self.grab(), path))

    def export_mosaic(self, path: str | None = None) -> bool:
        rgb = self.layers_panel.mosaic.colored_mosaic()
        if rgb is None:
            self.show_error("No layer mosaic yet: select a layer in the Layers tab first.")
            return False
        name = self.layers_panel.current or "layer"
        path = path or QFileDialog.getSaveFileName(self, "Export mosaic", f"{name}.png", "PNG (*.png)")[0]
        return bool(path) and self._saved(save_png(rgb, path))

    def _saved(self, problem: str) -> bool:
        if problem:
            self.show_error(problem)
        return not problem

    def show_error(self, message: str) -> None:
        """One clear line in the status bar and a (non-blocking) message box; nothing is lost."""
        self.last_error = message
        self.status.set_error(message)
        if not self._closed:
            self.error_box.setText(message)
            self.error_box.open()

    def shortcut_list(self) -> list[tuple[str, str]]:
        keys = list(WINDOW_KEYS)
        for entry in PANELS:
            keys += [(k, f"{entry.title}: {what}") for k, what in self.panel(entry.name).shortcuts()]
        return keys

    def show_shortcuts(self) -> None:
        show_shortcuts(self, self.shortcut_list())

    def show_about(self) -> None:
        show_about(self)

    # ----------------------------------------------------------------- results
    def _on_image_loaded(self, image) -> None:
        if self.session.model_info is not None:  # its views follow: the photo is painted after the first
            self.side.hold_repaint()
        self.side.set_image(image)
        width, height = image.size
        self.status.set_image(image.name, width, height)
        self._update_title()
        if self.persist and os.path.isfile(image.source):
            self.settings.setValue(KEY_IMAGE, os.path.abspath(image.source))

    def _on_model_loaded(self, info) -> None:
        self._fallback_model = None
        self.picker.set_spec(info.spec)
        self.side.set_model(info)
        self.status.set_model(info.title, info.note, info.device)
        self._update_title()
        if self.persist:
            self.settings.setValue(KEY_MODEL, info.spec)

    def _on_model_failed(self, message: str) -> None:
        self.show_error(message)
        if self.session.requested_spec:
            self.picker.forget(self.session.requested_spec)
        current = self.session.model_info
        if current is not None:
            self.picker.set_spec(current.spec)
        elif self._fallback_model:
            spec, self._fallback_model = self._fallback_model, None
            self.load_model(spec)

    def _on_model_needs_trust(self, spec: str, message: str) -> None:
        if confirm_pickled_model(self, message):
            self.load_model(spec, allow_pickle=True)
        else:
            self._on_model_failed(message)

    def _on_views_stale(self) -> None:
        self.side.predictions_stale()
        self.side.show_field(None)

    def _on_view(self, key: str, data) -> None:
        self.side.release_repaint()
        if key == PREDICTIONS_KEY:
            self.side.set_predictions(data.top)
            self.status.set_forward(data.forward_ms)

    def _on_view_failed(self, key: str, message: str) -> None:
        self.side.release_repaint()
        if key == PREDICTIONS_KEY:
            self.side.predictions_failed(message)
        self.status.set_error(message)

    def _on_unit_hovered(self, unit) -> None:
        """Draw the receptive field of (layer, row, col) on the photo; None hides it."""
        self.side.show_field(unit, self.session.model_info, self.session.image)

    def _on_tab_changed(self, index: int) -> None:
        self.panel(VIEWS[index])
        self.side.show_field(None)
        if self.persist:
            self.settings.setValue(KEY_TAB, VIEWS[index])

    def _update_title(self) -> None:
        parts = ["convviz"]
        if self.session.image is not None:
            parts.append(self.session.image.name)
        if self.session.model_info is not None:
            parts.append(self.session.model_info.title)
        self.setWindowTitle(" — ".join(parts))

    def place_on_screen(self, area: QRect | None = None) -> None:
        """Fit the window, frame included, into ``area`` (default: its screen's available geometry)."""
        place_on_screen(self, area)

    # ------------------------------------------------------------ Qt overrides
    def _restore_window(self) -> None:
        """The last size and place, only where it still fits the screen; and the last tab."""
        geometry = self.settings.value(KEY_GEOMETRY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
            if not fits(self):  # a bigger screen then: start from the default, fitted by place_on_screen
                self.setWindowState(Qt.WindowState.WindowNoState)
                self.resize(*DEFAULT_SIZE)
        tab = self.settings.value(KEY_TAB, "", str)
        if tab in VIEWS:
            self.set_view(tab)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._fit_side(self.splitter.width() or event.size().width())

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.persist and not self._closed:
            self.settings.setValue(KEY_GEOMETRY, self.saveGeometry())
            self.settings.setValue(KEY_TAB, self.current_view())
            self.settings.sync()
        self._closed = True
        self.error_box.close()
        self.hide()
        self.session.shutdown(CLOSE_GRACE_S)  # cancels running work; waits at most this long
        super().closeEvent(event)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_image(paths[0])
