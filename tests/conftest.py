"""Shared test setup: Qt offscreen, and no test may leave a thread or timer running."""
import os
import threading

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CONVVIZ_SETTINGS_ORG", "convviz-tests")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "resources", "samples")


@pytest.fixture
def sample_path():
    """Path of a bundled sample photo by short name (``cat``, ``coffee`` …)."""
    return lambda name: os.path.join(SAMPLES, f"{name}.jpg")


@pytest.fixture(autouse=True)
def _no_dangling_threads(request):
    """Fail a test that leaves Python threads or Qt pool workers running (napari-style)."""
    before = set(threading.enumerate())
    yield
    if "qtbot" in request.fixturenames or "qapp" in request.fixturenames:
        from PySide6.QtCore import QThreadPool

        pool = QThreadPool.globalInstance()
        if not pool.waitForDone(2000):
            pytest.fail(f"test left {pool.activeThreadCount()} Qt worker thread(s) running")
    alive = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    if alive:
        pytest.fail(f"test left threads running: {[t.name for t in alive]}")


@pytest.fixture(autouse=True)
def _no_dangling_timers(request, monkeypatch):
    """Fail a test that leaves a convviz QTimer active."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    from PySide6.QtCore import QTimer

    started = []
    original = QTimer.start

    def tracking_start(self, *args):
        started.append(self)
        return original(self, *args)

    monkeypatch.setattr(QTimer, "start", tracking_start)
    yield
    active = []
    for timer in started:
        try:
            if timer.isActive() and timer.parent() is not None and "convviz" in type(timer.parent()).__module__:
                active.append(timer)
        except RuntimeError:  # the C++ object is already gone
            pass
    if active:
        pytest.fail(f"test left {len(active)} QTimer(s) running: {[type(t.parent()).__name__ for t in active]}")
