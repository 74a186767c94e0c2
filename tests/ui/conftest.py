"""UI test fixtures: one EfficientNet-Lite0 built per test session and shared through its engine."""
import pytest


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
