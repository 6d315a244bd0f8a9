"""Version files by path: held fds on an entry's cached bytes, for reads that come without a handle.

WHY: the mount runs with the kernel's no_open (operations.open answers ENOSYS, DESIGN §7): no
OPEN or RELEASE upcall ever comes, every read arrives with fh=0 and a path, and warm small-file
reads cost no upcall at all. A read of a cached entry is still best answered as `(fd, pos, len)`
spans that libfuse preads in C (fusebuf), so this table keeps one ObjectHandle (cache/handles.py)
per recently read path, least recently used first out. Version paths name immutable bytes, so an
entry never goes stale; a handle made before its bytes were cached is replaced once they are.

An fd handed to libfuse is read *after* read_buf returns (in C, on the same worker thread), and
there is no RELEASE to say when that is over. So a handle dropped from the table is only
retired: it is closed once no thread's latest reply still points into it. A thread's latest
reply is over when that thread enters read_buf again, or when the thread no longer exists
(libfuse's loop retires idle workers); a closed fd number could otherwise be reused by the next
open and serve another file's bytes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from artifactfs.cache.handles import ObjectHandle, Span

if TYPE_CHECKING:
    from artifactfs.fusefs.catalog import VersionView
    from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

LIMIT = 256
"""Handles kept (most hold one fd; a big entry read by block holds up to 64)."""


def _thread_alive(tid: int) -> bool:
    return os.path.exists(f"/proc/self/task/{tid}")


class OpenFiles:
    """path -> ObjectHandle of version files read recently (thread-safe)."""

    def __init__(self, resolver: Resolver, limit: int = LIMIT) -> None:
        self.resolver = resolver
        self.limit = limit
        self._handles: OrderedDict[str, ObjectHandle | None] = OrderedDict()
        self._pins: dict[int, ObjectHandle] = {}
        """native thread id -> the handle its latest reply's fds belong to"""
        self._retired: list[ObjectHandle] = []
        self._lock = threading.Lock()

    def spans(
        self, path: str, view: VersionView, i: int, offset: int, size: int
    ) -> list[Span] | None:
        """Cached pieces of entry `i` for a read of `path`, or None (not cached: read by bytes).

        The caller hands the spans to libfuse before this thread calls again. The handle is
        pinned to this thread before its fds are looked at, so no other thread can close them
        in between."""
        tid = threading.get_native_id()
        with self._lock:
            known = path in self._handles
            if known:
                self._handles.move_to_end(path)
                handle = self._handles[path]
                self._pin(tid, handle)
        if not known:
            handle = self._new_handle(view, i)
            with self._lock:
                old = self._handles.pop(path, None)
                if old is not None:
                    self._retired.append(old)  # a racing thread made one too
                self._handles[path] = handle
                while len(self._handles) > self.limit:
                    _, gone = self._handles.popitem(last=False)
                    if gone is not None:
                        self._retired.append(gone)
                self._pin(tid, handle)
        spans = handle.spans(offset, size) if handle is not None else None
        with self._lock:
            if not spans:
                self._pin(tid, None)
            stale = spans is None and handle is not None and not handle.whole
            if stale and handle is not None and self._handles.get(path) is handle:
                # made before the bytes were cached (or a block is missing): the next read
                # builds a fresh handle, which finds the cached object
                del self._handles[path]
                self._retired.append(handle)
            retired = self._close_unpinned() if self._retired else []
        for h in retired:
            h.close()
        return spans

    def _pin(self, tid: int, handle: ObjectHandle | None) -> None:
        if handle is None:
            self._pins.pop(tid, None)
        else:
            self._pins[tid] = handle

    def _new_handle(self, view: VersionView, i: int) -> ObjectHandle | None:
        try:
            return self.resolver.open_handle(view.index.entry(i))
        except (OSError, ValueError) as e:  # unusual references: reads take the slow path
            log.debug("no fd handle for %s: %s", view.index.path(i), e)
            return None

    def _close_unpinned(self) -> list[ObjectHandle]:
        """Retired handles no live thread's latest reply uses (called with the lock held)."""
        pinned = {id(h) for h in self._pins.values()}
        if any(id(h) in pinned for h in self._retired):
            for tid in [t for t in self._pins if not _thread_alive(t)]:
                del self._pins[tid]
            pinned = {id(h) for h in self._pins.values()}
        done = [h for h in self._retired if id(h) not in pinned]
        self._retired = [h for h in self._retired if id(h) in pinned]
        return done

    def close(self) -> None:
        """Close every handle (the loop has stopped: no reply is in flight)."""
        with self._lock:
            handles = [h for h in self._handles.values() if h is not None] + self._retired
            self._handles.clear()
            self._retired = []
            self._pins.clear()
        for h in handles:
            h.close()

    def __len__(self) -> int:
        return len(self._handles)
