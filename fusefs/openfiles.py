"""Version files by path: held fds on an entry's cached bytes, for reads that come without a handle.

WHY: the mount runs with the kernel's no_open (operations.open answers ENOSYS, DESIGN §7): no
OPEN or RELEASE upcall ever comes, every read arrives with fh=0 and a path, and warm small-file
reads cost no upcall at all. A read of a cached entry is still best answered as `(fd, pos, len)`
spans that libfuse preads in C (fusebuf), so this table keeps one ObjectHandle (cache/handles.py)
per recently read path, least recently used first out. Version paths name immutable bytes, so an
entry never goes stale; a handle made before its bytes were cached finds them once they are
(handles.py), and is kept meanwhile: it is what sees a reader go sequentially from offset 0 and
joins the background whole fill for it. Threads that race to make a path's first handle end up
sharing one. Only a handle whose block fds are all taken (handles.py's `max_fds`) is replaced.

No RELEASE also means no "the reader stopped": a handle that joined a background whole fill
(a sequential reader of a big remote entry) would keep that download going to the end. So a
handle with an unfinished fill that saw no read for `IDLE` seconds is retired like an evicted
one, which detaches it from the fill (and cancels a fill nobody else reads).

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
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from artifactfs.cache.handles import ObjectHandle, Span

if TYPE_CHECKING:
    from artifactfs.fusefs.catalog import VersionView
    from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

LIMIT = 256
"""Handles kept (most hold one fd; a big entry read by block holds up to 64)."""
IDLE = 10.0
"""Seconds without a read after which a handle stops feeding a background whole fill."""


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
        self._used: dict[str, float] = {}
        """path -> when a handle that joined a fill was last read (monotonic)"""
        self._idle_thread: threading.Thread | None = None
        self._closed = threading.Event()

    def spans(
        self,
        path: str,
        locate: Callable[[], tuple[VersionView, int]],
        offset: int,
        size: int,
    ) -> list[Span] | None:
        """Cached pieces of the entry at `path` (found by `locate` when no handle is kept for
        it), or None (not cached: read by bytes).

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
        spare = None
        if not known:
            view, i = locate()
            handle = self._new_handle(view, i)
            with self._lock:
                first = self._handles.get(path)
                if first is not None or (handle is None and path in self._handles):
                    # a racing thread made one first: share it, so that one handle sees every
                    # read of the path (its sequential-from-0 detection, its fill)
                    spare, handle = handle, first
                    self._handles.move_to_end(path)
                else:
                    self._handles[path] = handle
                    while len(self._handles) > self.limit:
                        _, gone = self._handles.popitem(last=False)
                        if gone is not None:
                            self._retired.append(gone)
                self._pin(tid, handle)
            if spare is not None:
                spare.close()  # never handed out
        spans = handle.spans(offset, size) if handle is not None else None
        with self._lock:
            if handle is not None and handle.filling:
                self._used[path] = time.monotonic()
                if self._idle_thread is None:
                    self._idle_thread = threading.Thread(
                        target=self._idle_loop, name="afs-idle-fills", daemon=True
                    )
                    self._idle_thread.start()
            if not spans:
                self._pin(tid, None)
            if (
                spans is None
                and handle is not None
                and handle.full
                and not handle.filling
                and self._handles.get(path) is handle
            ):
                # its block fds are all taken (a random reader of a huge entry): the next read
                # makes a fresh handle rather than take the copying path from now on
                del self._handles[path]
                self._retired.append(handle)
            retired = self._close_unpinned() if self._retired else []
        for h in retired:
            h.close()
        return spans

    def verified_object(self, path: str) -> tuple[str, os.stat_result] | None:
        """The whole cached object the handle of `path` reads, with its fstat at its check
        (for the C fast path), or None (no handle, or bytes held as blocks)."""
        with self._lock:
            handle = self._handles.get(path)
        return handle.verified_whole() if handle is not None else None

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

    def _idle_loop(self) -> None:
        while not self._closed.wait(IDLE / 4):
            self.retire_idle(time.monotonic() - IDLE)

    def retire_idle(self, before: float) -> None:
        """Retire handles with an unfinished fill last read before `before` (monotonic)."""
        idle = []
        with self._lock:
            for path, at in list(self._used.items()):
                handle = self._handles.get(path)
                if handle is None or not handle.filling:
                    del self._used[path]
                elif at < before:
                    del self._used[path], self._handles[path]
                    self._retired.append(handle)
                    idle.append(handle)
            retired = self._close_unpinned() if self._retired else []
        for h in idle:
            h.stop_fill()  # even while a thread's last reply still pins its fds
        for h in retired:
            h.close()

    def close(self) -> None:
        """Close every handle (the loop has stopped: no reply is in flight)."""
        self._closed.set()
        with self._lock:
            handles = [h for h in self._handles.values() if h is not None] + self._retired
            self._handles.clear()
            self._retired = []
            self._pins.clear()
        for h in handles:
            h.close()

    def __len__(self) -> int:
        return len(self._handles)
