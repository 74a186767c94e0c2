"""The toolbar's model picker (torch-free copy of the suggested specs)."""
from PySide6.QtCore import Qt

from convviz.ui.widgets.model_picker import SUGGESTED_SPECS, ModelPicker


def test_picker_offers_the_core_suggestions():
    from convviz.core.model.loading import SUGGESTED_SPECS as CORE_SPECS

    assert SUGGESTED_SPECS == CORE_SPECS


def test_typing_a_spec_and_enter_requests_it_once(qtbot):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    asked = []
    picker.spec_requested.connect(asked.append)
    # Keys go to the combo box (its line edit forwards focus to it), as they do for a user.
    picker.combo.lineEdit().clear()
    qtbot.keyClicks(picker.combo, "timm:mobilenetv3_small_050")
    qtbot.keyClick(picker.combo, Qt.Key.Key_Return)
    assert asked == ["timm:mobilenetv3_small_050"]
    picker.combo.lineEdit().clear()
    qtbot.keyClicks(picker.combo, "resnet18")
    qtbot.keyClick(picker.combo, Qt.Key.Key_Return)
    assert asked == ["timm:mobilenetv3_small_050", "resnet18"]


def test_choosing_a_suggestion_requests_it(qtbot):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    asked = []
    picker.spec_requested.connect(asked.append)
    picker.combo.setCurrentIndex(SUGGESTED_SPECS.index("resnet18"))
    picker.combo.activated.emit(SUGGESTED_SPECS.index("resnet18"))
    assert asked[-1] == "resnet18"


def test_set_spec_shows_without_requesting(qtbot):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    asked = []
    picker.spec_requested.connect(asked.append)
    picker.set_spec("/models/mine.pt")
    assert picker.current_spec() == "/models/mine.pt" and asked == []
