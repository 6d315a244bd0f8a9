"""Open version files: one file handle per open(2), holding fds on the entry's cached bytes.

WHY handles at all (DESIGN §7 says skipping open/release saves upcalls): the mount needs `open`
anyway (drafts, EROFS), and a handle lets every read of a cached entry become an `(fd, pos, len)`
answer that libfuse serves in C (fusebuf), instead of open+fstat+pread+close+copy in Python per
128 KiB. The fds are closed in `release`, which the kernel sends only after the last read of that
open file was answered, so libfuse never reads from a closed (or reused) fd.

Handle numbers start at 2**48, far from the drafts' (real fds, or virtual ones from 2**32) and
the control dir's (small integers), so `release` can tell them apart without routing the path.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING

from artifactfs.cache.handles import ObjectHandle, Span

if TYPE_CHECKING:
    from artifactfs.fusefs.catalog import VersionView
    from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

FH_BASE = 1 << 48


class OpenFiles:
    """fh -> ObjectHandle of open version files (thread-safe)."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._next = itertools.count(FH_BASE)
        self._open: dict[int, ObjectHandle | None] = {}
        self._lock = threading.Lock()

    def open(self, view: VersionView, i: int) -> int:
        """A new handle for entry `i` of `view` (its fds are opened lazily, as bytes get cached)."""
        handle: ObjectHandle | None
        try:
            handle = self.resolver.open_handle(view.index.entry(i))
        except (OSError, ValueError) as e:  # unusual references: reads take the slow path
            log.debug("no fd handle for %s: %s", view.index.path(i), e)
            handle = None
        fh = next(self._next)
        with self._lock:
            self._open[fh] = handle
        return fh

    def spans(self, fh: int, offset: int, size: int) -> list[Span] | None:
        """Cached pieces for a read on `fh`, or None (not a version handle, or not cached)."""
        handle = self._open.get(fh)
        if handle is None:
            return None
        return handle.spans(offset, size)

    def release(self, fh: int) -> bool:
        """Close `fh`'s fds; False when `fh` is not a version handle."""
        if fh < FH_BASE:
            return False
        with self._lock:
            handle = self._open.pop(fh, None)
        if handle is not None:
            handle.close()
        return True

    def __len__(self) -> int:
        return len(self._open)
