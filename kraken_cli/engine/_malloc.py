"""glibc's allocator tuned to the two ways kraken uses memory; nothing happens elsewhere (musl, macOS).

glibc serves a large allocation with its own memory map, returned to the operating system when
freed; after such a block is freed it raises that threshold to the block's size (up to 32 MB) and
trims freed pages off the top of its heap beyond twice that. Every page it maps anew is zeroed by
the kernel on first touch, which on the 2-core test machine costs about as much as computing on it.

* ``kraken run`` (:func:`map_big_blocks`) reads inputs, then predicts and writes file after file:
  it wants freed arrays gone, so peak memory is what is alive. The threshold is fixed at
  :data:`MMAP_THRESHOLD`: 4 MB is above one chunk's decoding temporaries (256 subjects x 3655
  edges, float32: 3.7 MB), which stay on the heap and are reused (at 1 MB they were mapped and
  faulted in anew each time, which doubled the decoding time).
* ``kraken train`` (:func:`keep_freed_buffers`) allocates the same buffers every batch (a
  paper-scale batch's predictions are 9.4 MB): it wants them reused. The threshold is fixed at
  glibc's largest (32 MB) and trimming at :data:`TRIM_THRESHOLD`, so a batch's buffers come from
  pages the process already holds: a paper-scale epoch spent 40-80 ms less in the kernel (of
  0.55 s). Setting only one of the two would be worse than neither: it turns off glibc's own
  adjustment of the other (tried: 1.4 s/epoch).

Either is set once per process, and not at all when the user tunes malloc (``MALLOC_*_`` or
``GLIBC_TUNABLES`` in the environment).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

#: ``kraken run``: allocations of at least this many bytes get their own map (returned when freed).
MMAP_THRESHOLD = 4 << 20
#: ``kraken train``: allocations below this many bytes come from the heap (glibc's largest setting).
TRAIN_MMAP_THRESHOLD = 32 << 20
#: ``kraken train``: freed memory at the top of the heap kept for reuse, at most this many bytes.
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
_done: str | None = None  # the policy set in this process


def map_big_blocks() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` (once); True when it is set."""
    return _apply("run", {_M_MMAP_THRESHOLD: MMAP_THRESHOLD})


def keep_freed_buffers() -> bool:
    """Keep freed buffers up to 32 MB in the process for reuse (once); True when it is set."""
    return _apply("train", {_M_MMAP_THRESHOLD: TRAIN_MMAP_THRESHOLD, _M_TRIM_THRESHOLD: TRIM_THRESHOLD})


def _apply(policy: str, settings: dict[int, int]) -> bool:
    global _done
    if _done is not None:
        return _done == policy
    mallopt = _mallopt()
    if mallopt is None or any(k in os.environ for k in _ENV):
        return False
    if all(mallopt(param, value) for param, value in settings.items()):
        _done = policy
    return _done == policy


def _mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no libc.so.6)
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt
