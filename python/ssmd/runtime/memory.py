"""Process memory: the allocator settings of a capture, and RSS readings.

A capture moves a steady stream of short-lived buffers of 100 KiB to a few
MiB (each core batch's lines, the groups published to the bus, the archive
writer's members) between the event loop and a writer thread. glibc's
``malloc`` serves such sizes from ``mmap`` at first, but raises that
threshold each time one is freed (up to 32 MiB), after which they come from
the heap, where a long-lived object left between them keeps the freed
space from going back to the system: RSS then grows to several times what
is live. :func:`tune_allocator` fixes the threshold at 128 KiB (large
buffers are always mapped and unmapped, so RSS follows what is live) and
returns heap tops above 1 MiB to the system. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys

__all__ = ["peak_rss", "rss", "tune_allocator"]

log = logging.getLogger("ssmd.memory")

#: glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: allocations at least this large are mapped (and unmapped when freed)
MMAP_THRESHOLD = 128 << 10
#: free memory at the top of the heap past this goes back to the system
TRIM_THRESHOLD = 1 << 20

_tuned: bool | None = None
_libc: object | None = None


def _glibc() -> object | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _libc = libc
    return _libc


def tune_allocator() -> bool:
    """Set the process's malloc thresholds for a capture (once); False if not glibc."""
    global _tuned
    if _tuned is None:
        libc = _glibc()
        _tuned = bool(
            libc is not None
            and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # type: ignore[attr-defined]
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)  # type: ignore[attr-defined]
        )
        log.debug("malloc thresholds %s", "set" if _tuned else "left alone (not glibc)")
    return _tuned


def rss() -> int:
    """Resident set size of this process now, bytes (0 where unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss() -> int:
    """Peak resident set size of this process so far, bytes (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
