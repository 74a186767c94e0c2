"""UI test fixtures: one EfficientNet-Lite0 built per test session and shared through its engine;
windows on it, and a helper that waits for one view."""
import pytest
from PySide6.QtCore import QSettings

from convviz.core.images import load_image
from convviz.ui.main_window import MainWindow
from convviz.workers.session import Session

from ui_helpers import LOAD_MS, STEP_MS


@pytest.fixture(scope="session", autouse=True)
def _gui_switch_interval():
    """Worker threads hand the GIL back every millisecond, as ``convviz.app.main`` sets it for the app:
    the GUI tests measure event-loop stalls, and with Python's default 5 ms a repaint waits up to that
    long behind a worker at every Python callback."""
    import sys

    from convviz.workers.process import GIL_SWITCH_S

    before = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_S)
    yield
    sys.setswitchinterval(before)


@pytest.fixture(scope="session")
def _lite0():
    from convviz.workers.engine import Engine

    engine = Engine()
    engine.import_torch()
    loaded = engine.build("default")
    return engine, loaded, engine.describe(loaded)


@pytest.fixture
def lite0_engine(_lite0):
    """The shared engine holding the bundled model (re-installed if a test loaded another one)."""
    engine, loaded, info = _lite0
    if engine.loaded is not loaded:
        with engine.lock:
            engine.install(loaded, info)
    return engine


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings):
    """Factory of shown windows; each is closed (jobs cancelled and awaited) after the test."""
    windows = []

    def make(store=None, session=None, lazy=False):
        window = MainWindow(session=session, settings=store if store is not None else settings, lazy=lazy)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.session.shutdown(60.0)


@pytest.fixture
def ready(qtbot, make_window, lite0_engine, sample_path):
    """A window showing the cat under the (shared, already built) default model; first mosaic in."""
    window = make_window(session=Session(engine=lite0_engine))
    layers = window.layers_panel
    with qtbot.waitSignals([layers.ready, window.session.view_ready], timeout=LOAD_MS):
        window.session.set_image(load_image(sample_path("cat")))
        window.session.adopt_installed_model()
    qtbot.waitUntil(lambda: len(window.predictions.predictions) == 5, timeout=STEP_MS)
    return window
