"""Keep a Python thread state for each libfuse worker thread, instead of one per request.

WHY: libfuse's multi-threaded loop runs requests on its own threads, which Python does not know.
Each callback into Python (a ctypes callback) then calls PyGILState_Ensure, which creates a
thread state for the thread, and PyGILState_Release, which destroys it again when the callback
returns: per request, an allocation of the thread state and its frame stack (an mmap and a
munmap under strace) and the interpreter's thread-list lock (futexes that convoy with the GIL).
Profiled on 20k cold 4 KiB reads with 4 readers: 1 mmap + 1 munmap per READ, and reads 1.4x
faster once each worker thread keeps its state (issue 23's note has the figures).

How: the first callback on a worker thread calls PyGILState_Ensure once more, without a matching
release, so the count never drops to zero and the state lives as long as the thread. libfuse 3.12+
never retires worker threads by default (max_idle_threads -1); where a thread does end (libfuse
2.9, which retires idle ones past 10), its state stays allocated, a few KiB: at most KEEP_LIMIT of
them are made, then callbacks go back to a state per request. A thread whose id is reused by a
new thread is taken for kept and simply gets a state per request: never wrong, only slower.
"""

from __future__ import annotations

import ctypes
import threading

KEEP_LIMIT = 256
"""Worker threads given a lasting state, at most (libfuse 3 runs at most 10 at once)."""

_kept: set[int] = set()
_ensure = ctypes.pythonapi.PyGILState_Ensure  # pythonapi: called with the GIL held, kept so


def keep_thread_state() -> None:
    """Called first in every FUSE callback (guard.py): cheap after the first call per thread."""
    tid = threading.get_ident()  # pthread_self: no system call, unlike get_native_id
    if tid in _kept or len(_kept) >= KEEP_LIMIT:
        return
    _kept.add(tid)
    if threading.main_thread().ident != tid:  # the main thread's state is Python's own
        _ensure()
