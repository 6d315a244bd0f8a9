"""Open files of drafts: the FUSE file handles behind open/create/read/write/release.

* A handle of a staged file is a real OS fd on it (writes are one `pwrite`, no lock, no Python
  buffering; the kernel's fh *is* the fd).
* A read-only open of an unchanged file gets a small integer above 2**32 and reads its stored
  entry by range through the resolver and the shared cache (no copy-up for reading).

Apart from the draft tree callbacks (draft_ops.py) because everything about an open file lives
here: what a handle is, how its bytes move, when the Draft hears that a writer closed.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
from dataclasses import dataclass

from artifactfs.drafts.workspace import Draft
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry

log = logging.getLogger(__name__)

VIRTUAL_FH_BASE = 1 << 32


def oserr(code: int, path: str, why: str = "") -> OSError:
    return OSError(code, why or os.strerror(code), path)


@dataclass
class Handle:
    """An open file of a draft: a real fd on a staged file, or a stored entry read by range."""

    draft: Draft
    fd: int | None
    entry: ManifestEntry | None
    writable: bool


class DraftFiles:
    """The table of open draft files, by FUSE file handle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._virtual = itertools.count(VIRTUAL_FH_BASE)

    def _register(self, handle: Handle) -> int:
        fh = handle.fd if handle.fd is not None else next(self._virtual)
        with self._lock:
            self._handles[fh] = handle
        return fh

    def _handle(self, fh: int, path: str) -> Handle:
        handle = self._handles.get(fh)
        if handle is None:
            raise oserr(errno.EBADF, path)
        return handle

    def fstat(self, fh: int | None) -> os.stat_result | None:
        """The staged file behind `fh`, if it is one (fresh size while writers append)."""
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None and handle.fd is not None:
            return os.fstat(handle.fd)
        return None

    def open(self, draft: Draft, rel: str, flags: int, path: str) -> int:
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC
        if writing:
            fd = draft.open_file(rel, flags)
            return self._register(Handle(draft, fd, None, True))
        with draft.lock:
            node = draft.node(rel)
            if node.is_dir:
                raise oserr(errno.EISDIR, path)
            if node.staged is not None:
                return self._register(Handle(draft, draft.open_staged_readonly(rel), None, False))
            return self._register(Handle(draft, None, node.entry, False))

    def create(self, draft: Draft, rel: str, mode: int, flags: int, path: str) -> int:
        if not rel:
            raise oserr(errno.EISDIR, path)
        fd = draft.open_file(rel, flags | os.O_CREAT, mode)
        writable = (flags & os.O_ACCMODE) != os.O_RDONLY
        if not writable:
            draft.writer_closed()
        return self._register(Handle(draft, fd, None, writable))

    def read(self, fh: int, size: int, offset: int, path: str) -> bytes:
        handle = self._handle(fh, path)
        if handle.fd is not None:
            return os.pread(handle.fd, size, offset)
        assert handle.entry is not None
        length = max(0, min(size, (handle.entry.size or 0) - offset))
        if length == 0:
            return b""
        try:
            return handle.draft.read_stored(handle.entry, offset, length)
        except ArtifactFSError as e:
            log.error("read of %s failed: %s", path, e)
            raise oserr(errno.EIO, path) from e

    def write(self, fh: int, data: bytes, offset: int, path: str) -> int:
        handle = self._handle(fh, path)
        if handle.fd is None or not handle.writable:
            raise oserr(errno.EBADF, path)
        return os.pwrite(handle.fd, data, offset)

    def ftruncate(self, fh: int | None, length: int) -> bool:
        """Truncate through an open writable handle; False when `fh` is none such."""
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None and handle.fd is not None and handle.writable:
            os.ftruncate(handle.fd, length)
            return True
        return False

    def release(self, fh: int) -> None:
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is None:
            return
        if handle.fd is not None:
            os.close(handle.fd)
        if handle.writable:
            handle.draft.writer_closed()

    def fsync(self, fh: int, datasync: int) -> None:
        handle = self._handles.get(fh)
        if handle is not None and handle.fd is not None:
            (os.fdatasync if datasync else os.fsync)(handle.fd)
            handle.draft.fsync()
