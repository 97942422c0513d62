"""Keep freed memory in the worker process, so a batch's large numpy temporaries reuse pages."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
# Arrays up to 32 MB (glibc's upper bound for the threshold) come from the heap, not from a
# fresh mmap, and up to 1 GB of freed heap stays mapped: the hot paths allocate and free
# arrays of a few MB per column per batch, and faulting fresh zeroed pages in for each cost
# about a tenth of their CPU time. Peak memory is unchanged; it is only not returned at once.
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30
_TOP_PAD = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc's allocator once per process (True if it took); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        (_M_TOP_PAD, _TOP_PAD),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)
