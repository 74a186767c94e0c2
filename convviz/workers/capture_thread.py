"""One long-lived thread runs every capturing forward pass, so its memory stays in one pool.

glibc's malloc gives each thread that allocates its own arena, and memory freed goes back to
the arena that allocated it. A capture holds ~80 MB (every layer of Lite0 at 224×224); when
the view job that captured ran on whichever pool thread was free, the memory of the evicted
capture sat in one thread's arena while the next capture was made on another, which took
fresh pages from the system: ~19 000 page faults, about as long as the forward pass itself,
on four new images in ten (measured on a 2-core machine). Made on this one thread, each
capture reuses the memory the capture it evicts gave back.

:func:`run_on_capture_thread` blocks its caller (a job thread holding the engine lock) until
the function has run there, and re-raises what it raised. The thread is a daemon, started on
first use; it holds nothing between calls.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

T = TypeVar("T")

_calls: queue.SimpleQueue = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()


def _serve() -> None:
    while True:
        future, fn = _calls.get()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)
            del future, fn  # drop the result here: the caller owns it now


def run_on_capture_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run on the capture thread (inline when called from it); its result or its exception."""
    global _thread
    if threading.current_thread() is _thread:
        return fn()
    with _start_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_serve, name="convviz-capture", daemon=True)
            _thread.start()
    future: Future = Future()
    _calls.put((future, fn))
    return future.result()
