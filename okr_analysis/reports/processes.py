"""Process housekeeping for the batch: exit with the parent, give memory back to the system.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import time

import pyarrow as pa


def _exit_with_parent(ppid: int) -> None:
    """Exit this worker once the batch process is gone (killed without a chance to stop its workers);
    the worker's kernel and browser then exit too, as they watch this process."""
    while True:
        time.sleep(1.0)
        if os.getppid() != ppid:
            os._exit(1)


def _release() -> None:
    """Give the memory of dropped tables back to the system: Python's garbage, Arrow's pool and glibc's heap."""


    gc.collect()
    pa.default_memory_pool().release_unused()
    _trim_heap()


def _trim_heap() -> None:
    """Hand the free pages of glibc's heap back to the system (``malloc_trim``; a no-op elsewhere).

    glibc keeps freed memory for reuse; a process that frees more than it will need again (the batch
    after its shared analyses, and a little at each manifest rewrite) would otherwise only ever grow.
    """

    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)
