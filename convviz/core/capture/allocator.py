"""Keep freed memory for reuse (glibc): a capture then needs no fresh page faults.

A capturing forward pass holds every intermediate tensor until the view drops it. With
glibc's defaults, large blocks are ``mmap``-ed and handed back to the system on free, so
the next pass faults tens of MB of pages in again (about a third of the pass on a 2-core
machine). Raising the mmap and trim thresholds keeps those pages in the heap. No-op on
other C libraries.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper bound on 64-bit
_done = False


def keep_freed_memory(trim_bytes: int = 1 << 30) -> bool:
    """Tune glibc malloc once per process; True if it was applied."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, trim_bytes) == 1 and ok
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
