"""Helpers shared by the UI tests (imported as ``ui_helpers``; pytest puts tests/ui on sys.path)."""
LOAD_MS = 180_000  # a model load may also import torch, timm and torchvision
STEP_MS = 60_000


def next_of(qtbot, signal, key, action, timeout=STEP_MS):
    """Run ``action`` and return the data of the next ``signal(key, data)`` emitted for ``key``."""
    with qtbot.waitSignal(signal, timeout=timeout, check_params_cb=lambda k, _d: k == key) as blocker:
        action()
    return blocker.args[1]


def view_of(qtbot, window, key, action, timeout=STEP_MS):
    """Run ``action`` and return the data of the next ``view_ready`` for ``key``."""
    return next_of(qtbot, window.session.view_ready, key, action, timeout)


def task_result(qtbot, window, key, action, timeout=STEP_MS):
    """Run ``action`` and return the next ``task_ready`` result for ``key``."""
    return next_of(qtbot, window.session.task_ready, key, action, timeout)
