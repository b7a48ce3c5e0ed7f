"""glibc's allocator, told to keep the megabyte buffers a relay frees and takes again all day.

Every MB relayed passes through a few short-lived buffers of up to one
WebSocket message (1 MiB): a read, the frames joined into a message, the
masked copy. With glibc's defaults the top of the heap goes back to the
kernel whenever about twice the largest recent buffer lies free there, and
the next buffer faults its pages in again, zeroed: 300-470 page faults per MB
relayed, and two thirds of the server's and the agent's CPU per MB spent in
the kernel. Serving buffers up to 4 MiB from the heap and keeping up to 8 MiB
of it free doubled bulk throughput (``benchmarks/README.md``), for at most
8 MiB of memory held after a burst.

Only glibc on Linux is tuned; elsewhere (Windows, macOS, musl) nothing changes.
An administrator's own ``GLIBC_TUNABLES`` for malloc wins.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024
"""Buffers up to this size come from the heap, not from their own mmap."""
TRIM_THRESHOLD = 8 * 1024 * 1024
"""Free memory at the heap's top kept for the next buffers instead of given back."""


def tune() -> bool:
    """Set the two thresholds if this is glibc; returns whether they were set."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
