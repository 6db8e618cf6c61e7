"""The C allocator told to keep freed memory, so a training step or a timed pass does not pay
page faults for activations it allocated, freed and allocates again.

glibc returns every allocation above its mmap threshold (128 KiB at start, raised as large
blocks are freed) straight to the kernel, and trims the heap top above 128 KiB; an encoder's
activations are megabytes, so each forward pass maps fresh pages and faults them in. How often
depends on the process's history (the threshold adapts), so the same step or the same model
timed twice costs different amounts: measured on MiniLM, the CoFi step's gap above its floor
was these faults, and identical models timed in one pass differed by up to 9.6 %
(1.0 % kept; benchmarks/allocator.py).
Keeping freed memory (what jemalloc / tcmalloc do, and what PyTorch's CPU performance guide
recommends them for) makes both faster and repeatable. The cost: freed memory stays with the
process, up to ``TRIM_THRESHOLD`` above its peak use.

Applied by :func:`keep_freed_memory` wherever this project trains or times (a pruning job, the
teacher's fine-tune, a timing pass); a no-op where the C library is not glibc, and with
``COFI_SWEEP_MALLOC=system`` (the C library's defaults; what ``benchmarks/allocator.py``
compares against).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

MMAP_THRESHOLD = 256 << 20  # allocations below this come from the reusable heap
TRIM_THRESHOLD = 1 << 30  # free memory the heap top may keep before it is returned
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


@functools.cache
def keep_freed_memory() -> bool:
    """Sets glibc's mmap and trim thresholds for this process (once); True when applied."""
    if os.environ.get("COFI_SWEEP_MALLOC", "keep") == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
