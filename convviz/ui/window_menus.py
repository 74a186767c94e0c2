"""The main window's menus and toolbar, and its two dialogs (keyboard shortcuts, about)."""
from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox, QToolBar

from convviz import __version__
from convviz.ui.registry import panel_names
from convviz.ui.settings import SAMPLE_NAMES, sample_path
from convviz.ui.widgets.model_picker import ModelPicker


def build_actions(window) -> None:
    """File / View / Help menus and the toolbar (model picker, open, paste) of ``window``."""
    views = panel_names()

    def action(text, slot, shortcut=None, tip=""):
        act = QAction(text, window)
        act.triggered.connect(slot)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setStatusTip(tip)
        return act

    window.open_image_action = action("Open image…", window.choose_image, QKeySequence.StandardKey.Open,
                                      "Open a photo (JPEG, PNG, TIFF, WebP …)")
    window.open_model_action = action("Open model file…", window.choose_model_file, "Ctrl+Shift+O",
                                      "TorchScript, a convviz checkpoint or a state dict")
    window.paste_action = action("Paste image", window.paste_image, QKeySequence.StandardKey.Paste,
                                 "Use the image on the clipboard")
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(window.open_image_action)
    file_menu.addAction(window.open_model_action)
    samples = file_menu.addMenu("Sample images")
    for name in SAMPLE_NAMES:
        samples.addAction(action(name.capitalize(), lambda _=False, n=name: window.open_image(sample_path(n))))
    file_menu.addAction(window.paste_action)
    file_menu.addSeparator()
    export = file_menu.addMenu("Export")
    export.addAction(action("Window as PNG…", lambda: window.export_window()))
    if "layers" in views:
        export.addAction(action("Current layer mosaic as PNG…", lambda: window.export_mosaic()))
    if "convolution" in views:
        export.addAction(action("Convolution frame as PNG…", lambda: window.conv_panel.ask_save_frame()))
        export.addAction(action("Convolution animation as GIF…", lambda: window.conv_panel.ask_save_gif()))
    file_menu.addSeparator()
    file_menu.addAction(action("Quit", window.close, QKeySequence.StandardKey.Quit))
    view_menu = window.menuBar().addMenu("&View")
    view_menu.addAction(action("Show / hide photo column", window.toggle_side, "Ctrl+L"))
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction(action("Keyboard shortcuts", window.show_shortcuts, QKeySequence.StandardKey.HelpContents))
    help_menu.addAction(action("About convviz", window.show_about))

    window.picker = ModelPicker()
    window.picker.spec_requested.connect(window.load_model)
    window.picker.file_requested.connect(window.choose_model_file)
    toolbar = QToolBar("Main")
    toolbar.setObjectName("main-toolbar")
    toolbar.setMovable(False)
    toolbar.addWidget(window.picker)
    toolbar.addSeparator()
    toolbar.addAction(window.open_image_action)
    toolbar.addAction(window.paste_action)
    window.addToolBar(toolbar)


def show_shortcuts(window, keys: list[tuple[str, str]]) -> None:
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(w)}</td></tr>"
                   for k, w in keys)
    QMessageBox.information(window, "Keyboard shortcuts", (
        f"<table>{rows}</table><p>Animation keys act when the stage has the focus (click it); "
        "a focused slider, spin box, check box or text field keeps its own keys.</p>"))


def show_about(window) -> None:
    QMessageBox.about(window, "About convviz", (
        f"<b>convviz {__version__}</b><p>Open up a convolutional network and see what it does: "
        "sliding filters, activation maps and receptive fields on your own photos.</p>"
        "<p>Sample photos: scikit-image's data set (public domain / CC0).</p>"))
