"""The Layers filter selects the layer the text means: exact path, then path prefix, then any part; Enter jumps."""
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from convviz.core.capture.layer_table import LayerRow
from convviz.ui.layers.panel import LayersPanel

from ui_helpers import STEP_MS

ROWS = [LayerRow("conv_stem", "Conv2d", (8, 8, 8), kernel=(3, 3)),
        LayerRow("blocks.0.conv_dw", "Conv2d", (8, 8, 8), kernel=(3, 3)),
        LayerRow("blocks.0.conv_pw", "Conv2d", (8, 8, 8), kernel=(1, 1)),
        LayerRow("blocks.0", "Sequential", (8, 8, 8)),
        LayerRow("blocks.1.conv_dw", "Conv2d", (8, 8, 8), kernel=(3, 3)),
        LayerRow("blocks.1.act", "ReLU", (8, 8, 8)),
        LayerRow("blocks.1", "Sequential", (8, 8, 8)),
        LayerRow("blocks", "Sequential", (8, 8, 8)),
        LayerRow("fc", "Linear", (10,))]


def test_typing_selects_the_best_match_and_enter_jumps_to_it(qtbot):
    panel = LayersPanel()
    qtbot.addWidget(panel)
    panel.set_rows(ROWS)
    panel.show()
    assert panel.current == "conv_stem"
    QTest.keyClicks(panel.filter, "blocks.1.conv_dw")  # an exact path: that layer, not its ancestor blocks
    assert panel.current == "blocks.1.conv_dw"
    assert panel.proxy.data(panel.tree.currentIndex(), Qt.ItemDataRole.UserRole) == "blocks.1.conv_dw"
    panel.filter.setText("blocks.1")  # exact beats prefix (blocks.1.conv_dw, blocks.1.act)
    assert panel.current == "blocks.1"
    panel.filter.setText("blocks.0.c")  # prefix: the first in model order
    assert panel.current == "blocks.0.conv_dw"
    panel.filter.setText("conv_pw")  # anywhere in the path
    assert panel.current == "blocks.0.conv_pw"
    panel.filter.setText("0.conv")  # the current layer matches as well as any (blocks.0.conv_dw): it stays
    assert panel.current == "blocks.0.conv_pw"
    panel.filter.setText("relu")  # by type
    assert panel.current == "blocks.1.act"
    panel.filter.setText("nothing like it")  # no match: the layer stays
    assert panel.current == "blocks.1.act" and "0 of" in panel.count.text()
    panel.filter.clear()
    assert panel.current == "blocks.1.act"
    panel.select_layer("fc")
    QTest.keyClicks(panel.filter, "blocks.0")
    assert panel.current == "blocks.0"
    QTest.keyClick(panel.tree, Qt.Key.Key_Down)  # the user moves on in the filtered tree
    assert panel.current == "blocks.0.conv_dw"
    QTest.keyClick(panel.filter, Qt.Key.Key_Return)  # Enter brings the best match back
    assert panel.current == "blocks.0"
    qtbot.waitUntil(panel.tree.hasFocus, timeout=2000)  # and ↑/↓ step on from there


def test_an_exact_path_shows_that_layers_maps(qtbot, ready):
    """The reported case: ``blocks.2.0.conv_dw`` typed in the real model's filter shows its own maps."""
    ready.set_view("layers")
    panel = ready.layers_panel
    with qtbot.waitSignal(panel.ready, timeout=STEP_MS):
        panel.filter.setText("blocks.2.0.conv_dw")
    assert panel.current == "blocks.2.0.conv_dw" and panel.mosaic.name == "blocks.2.0.conv_dw"
    assert panel.count.text().startswith("1 of ")
