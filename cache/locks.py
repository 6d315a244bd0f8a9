"""Per-key locks: one download per key (or block) at a time inside a process.

Across processes nothing needs a lock for correctness: every fill is a private temporary file
renamed into place, and identical keys hold identical bytes, so two processes racing on a key
both succeed and the last rename wins. Bandwidth does: fills also take a cross-process fill
lock (filllock.py), after the thread lock here. Whole-cache maintenance (pruning) takes an
flock of its own (`file_lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Hashable, Iterator
from pathlib import Path


class KeyLocks:
    """A lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def busy(self, key: Hashable) -> bool:
        """True if some thread holds or waits for `key` (a fill is under way)."""
        with self._guard:
            return key in self._locks


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on `path`; yields False (without waiting) if busy and not blocking."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
