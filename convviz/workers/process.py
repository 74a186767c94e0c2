"""Process-wide settings, in one place.

- :func:`configure_gui_process`: set once at the app's start-up (the GIL switch interval).
- :func:`gui_friendly`: while a long task runs, Python's GIL switch interval is shortened so the GUI
  thread gets the GIL sooner (reference-counted: overlapping tasks restore it once the last ends).
- :func:`share_rng_lock`: seeded augmentation in preview and training threads takes turns on torch's
  global generator.
- :func:`freeze_long_lived`: move everything alive now to the collector's permanent generation.
"""
from __future__ import annotations

import contextlib
import gc
import sys
import threading

#: Python's GIL switch interval in the app: worker threads (model loads, training) hand the
#: interpreter back to the GUI thread every millisecond instead of every 5 ms
GIL_SWITCH_S = 0.001
#: Python's GIL switch interval while a long task runs
SWITCH_INTERVAL_S = 0.0005

_switch_lock = threading.Lock()
_switch_users = 0
_switch_before = sys.getswitchinterval()
_RNG_LOCK = threading.RLock()


def configure_gui_process() -> None:
    """The app's start-up settings: painting and input never wait long behind worker threads, and
    pyqtgraph loads without CUDA's Python bindings (see :func:`import_pyqtgraph`)."""
    sys.setswitchinterval(GIL_SWITCH_S)
    import_pyqtgraph()


def import_pyqtgraph() -> None:
    """Import pyqtgraph without its optional ``cuda.bindings.runtime`` import.

    pyqtgraph's RawImageGLWidget (unused here) imports CUDA's Python bindings when they are installed
    (they come with torch's CUDA wheels): 40 ms before the first paint, spent finding NVIDIA libraries.
    The module is hidden only while pyqtgraph loads; torch and anyone else import it as usual later.
    """
    if "pyqtgraph" in sys.modules:
        return
    name = "cuda.bindings.runtime"
    hidden = name not in sys.modules
    if hidden:
        sys.modules[name] = None  # type: ignore[assignment]  (import raises ImportError: pyqtgraph skips it)
    try:
        import pyqtgraph  # noqa: F401
    finally:
        if hidden:
            del sys.modules[name]


@contextlib.contextmanager
def gui_friendly(interval_s: float = SWITCH_INTERVAL_S):
    """While training, let the GUI thread take the GIL sooner (Python's switch interval, 5 ms by default).

    Training makes many tiny torch calls between Python lines; every Python callback of a repaint on
    the GUI thread (pyqtgraph's paint methods) then waits up to one interval for the GIL, and a
    repaint needs dozens of them. The interval in force before the first task is restored when the
    last one ends.
    """
    global _switch_users, _switch_before
    with _switch_lock:
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
        _switch_users += 1
        sys.setswitchinterval(min(_switch_before, interval_s))
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_before)


def share_rng_lock() -> None:
    """Seeded augmentation in preview and training threads takes turns on torch's global generator."""
    from convviz.core.finetune import augment

    augment.rng_guard = _RNG_LOCK


def freeze_long_lived() -> None:
    """Move everything alive now (torch, timm, Qt, the model) to the collector's permanent generation.

    A full collection of the ~500 000 objects a session holds took 250-290 ms with the GIL held, and
    one landing in a job froze the GUI as long (measured with ``gc.callbacks``). Freezing is O(1);
    cyclic garbage alive at this moment is never collected (reference counting still frees the rest).
    """
    gc.freeze()
