"""Guard against the Qt binding bug that crashes long sessions on Python < 3.12.

PySide6 6.12.0 drops one reference to ``None`` on every void Qt call and to ``True`` on
every signal emit; Python 3.11 does not make those objects immortal, so a few minutes of
animation end in "Fatal Python error: deallocating None". pyproject.toml excludes it.
"""
import sys

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    fired = Signal(int)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None and True are immortal from Python 3.12")
def test_qt_calls_keep_none_and_true_alive(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    emitter.fired.connect(lambda value: None)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(300):
        label.setText("x")
        label.update()
        emitter.fired.emit(i)
    assert sys.getrefcount(None) - none_before > -50, "the Qt binding leaks references to None"
    assert sys.getrefcount(True) - true_before > -50, "the Qt binding leaks references to True"
