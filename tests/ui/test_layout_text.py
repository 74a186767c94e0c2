"""At laptop sizes no text lies over a plot and no wrapped label is cut short, in every view and lab.

One window (the bundled model, the cat) is shared by all cases: each case resizes it, shows a
view or a Layers lab, waits until everything in it has loaded, then walks the whole widget tree
(scrolled-away parts included, see ``layout_check``).
"""
import pytest
from PySide6.QtCore import QPoint, QSettings

from convviz.core.images import load_image
from convviz.ui.main_window import MainWindow
from convviz.workers.session import Session

from layout_check import checked_count, cut_off, settle, short_labels, text_over_plots
from ui_helpers import LOAD_MS, STEP_MS

SIZES = [(1280, 720), (1024, 700)]
VIEWS = ["convolution", "layers", "finetune"]
#: each view's own tabs, all checked in its case: the Convolution toy and real layer, the Layers maps' tabs
SUB_TABS = {"convolution": ["toy", "real"], "layers": ["channel", "filters"]}
LABS = ["relu", "pool", "dropout", "pointwise"]
CASES = [(size, kind, name) for size in SIZES for kind, names in (("view", VIEWS), ("lab", LABS)) for name in names]


@pytest.fixture(scope="module")
def window(qapp, _lite0, tmp_path_factory):
    """One window on the shared engine, cat loaded; closed (work awaited) after the module."""
    from convviz.ui.settings import sample_path

    engine, loaded, info = _lite0
    if engine.loaded is not loaded:
        with engine.lock:
            engine.install(loaded, info)
    store = QSettings(str(tmp_path_factory.mktemp("layout") / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(session=Session(engine=engine), settings=store)
    win.show()
    win.session.set_image(load_image(sample_path("cat")))
    win.session.adopt_installed_model()
    yield win
    win.close()
    assert win.session.shutdown(60.0)
    win.deleteLater()


def show_case(qtbot, win, kind: str, name: str) -> None:
    if kind == "view":
        win.set_view(name)
        panel = win.current_panel()
        if name == "layers":
            layers = win.layers_panel
            qtbot.waitUntil(lambda: bool(layers.model.rows), timeout=LOAD_MS)
            layers.select_layer("conv_stem")  # the first-layer filters apply
        qtbot.waitUntil(lambda: panel.isVisible() and panel.is_ready(), timeout=LOAD_MS)
        if name == "finetune":  # the trainable-parameter count arrives from a worker
            qtbot.waitUntil(lambda: "parameters train" in panel.freeze.count.text(), timeout=STEP_MS)
        return
    win.set_view("layers")
    layers = win.layers_panel
    qtbot.waitUntil(lambda: bool(layers.model.rows), timeout=LOAD_MS)
    layers.show_on_load(None, name)
    lab = layers.labs.lab(name)
    assert layers.labs.currentWidget() is lab
    qtbot.waitUntil(lambda: lab.isVisible() and lab.is_ready() and layers.is_ready(), timeout=STEP_MS)
    assert lab.error is None, lab.error


def show_sub_tab(qtbot, win, tab: str) -> None:
    conv = win.conv_panel
    if tab in ("toy", "real"):
        (conv.show_toy if tab == "toy" else conv.show_real)()
        qtbot.waitUntil(conv.is_ready, timeout=STEP_MS)  # the real layer's view is in
    else:
        assert win.layers_panel.labs.select(tab)
    settle()


@pytest.mark.parametrize("size,kind,name", CASES, ids=[f"{w}x{h}-{n}" for (w, h), _k, n in CASES])
def test_no_text_over_plots_and_no_cut_labels(qtbot, window, size, kind, name):
    window.resize(*size)
    settle()
    show_case(qtbot, window, kind, name)
    settle()
    assert (window.width(), window.height()) == size
    for tab in SUB_TABS.get(name, [None]):
        if tab is not None:
            show_sub_tab(qtbot, window, tab)
        texts, plots = checked_count(window)
        assert texts > 20 and plots >= 2, (texts, plots)
        problems = text_over_plots(window) + short_labels(window) + cut_off(window)
        assert not problems, "\n".join([f"{tab or name}:"] + problems)
    if kind == "lab":
        assert_lab_in_view(window.layers_panel)


def assert_lab_in_view(panel) -> None:
    """The lab tabs are on screen: whole when they fit in the tab's viewport, else from their top."""
    viewport = panel.parentWidget()
    top = panel.labs.mapTo(viewport, QPoint(0, 0)).y()
    bottom = top + panel.labs.height()
    fits = panel.labs.height() <= viewport.height()
    assert top >= 0 and (bottom <= viewport.height() if fits else top == 0), (top, bottom, viewport.height())


def test_clicking_a_lab_tab_brings_the_lab_into_view(qtbot, window):
    """At 1024×700 the stacked Layers view is taller than its tab: a click on a lab's tab scrolls to it."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window.resize(1024, 700)
    window.set_view("layers")
    layers = window.layers_panel
    qtbot.waitUntil(lambda: bool(layers.model.rows), timeout=LOAD_MS)
    layers.select_layer("blocks.0.0.conv_pw")
    layers.labs.select("channel")
    settle()
    bar = layers.parentWidget().parentWidget().verticalScrollBar()
    bar.setValue(0)
    assert layers.labs.mapTo(layers.parentWidget(), QPoint(0, 0)).y() > layers.parentWidget().height() // 2
    lab = layers.labs.lab("pointwise")
    tabs = layers.labs.tabBar()
    QTest.mouseClick(tabs, Qt.MouseButton.LeftButton, pos=tabs.tabRect(layers.labs.indexOf(lab)).center())
    assert layers.labs.currentWidget() is lab
    qtbot.waitUntil(lambda: lab.is_ready() and lab.data is not None, timeout=STEP_MS)
    settle()
    assert_lab_in_view(layers)
