"""Give freed big arrays back to the operating system (glibc), so peak memory is what is alive.

glibc serves a large allocation with its own memory map, but after such a block is freed it raises
that threshold to the block's size (up to 32 MB), so later arrays of a few to tens of MB come from
the heap, whose freed pages the process keeps. A ``kraken run`` that reads inputs, then predicts
and writes file after file, frees and allocates arrays of that size all the time, so its resident
memory kept earlier peaks. :func:`map_big_blocks` fixes the threshold at :data:`MMAP_THRESHOLD`,
once per process. 4 MB is above one chunk's decoding temporaries (256 subjects x 3655 edges,
float32: 3.7 MB), which stay on the heap and are reused: at 1 MB they were mapped and faulted in
anew each time, which doubled the decoding time. It does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: Allocations of at least this many bytes get their own memory map (returned to the OS when freed).
MMAP_THRESHOLD = 4 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_done = False


def map_big_blocks() -> bool:
    """Fix glibc's mmap threshold (once); True when it was set."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _done
