"""Draft files found by path: the fds behind reads and writes, which arrive without a handle.

WHY: the mount runs with the kernel's no_open (operations.open answers ENOSYS, DESIGN §7), so
files are opened with no upcall, and their reads and writes arrive with fh=0 and only a path.
Even a file made by `create` gets no RELEASE once no_open is set (measured, kernel 6.18), so
the mount hands out no handles at all. This table keeps one fd per staged file, found from
(draft, path in the draft): a write is one pwrite, not open + pwrite + close, and the first
write to a stored file copies it up exactly as an open for writing did before
(`Draft.open_file`); a created file's fd goes straight into the table.

What keeps the bytes right:
* An entry is dropped whenever its path may name another file from then on: rename (both
  sides), unlink, rmdir (the subtree), create, a commit or discard of the draft. Every drop
  bumps a generation, and an fd opened while a drop happened is used for that one call only,
  never remembered, so the table never maps a path to a file that was moved or replaced.
* A dropped fd is closed only when no call is still using it (a use count): another thread
  may be inside a pread/pwrite on it, and a closed number can be reused by the next open.
* The table is bounded (least recently used out); a writer whose fd left simply reopens it.
* These fds are not the engine's "open writers": the kernel never tells when a file is
  closed, so which files are open for writing is read from /proc when a commit asks
  (writers.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from artifactfs.drafts.workspace import Draft
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry

log = logging.getLogger(__name__)

LIMIT = 128


def oserr(code: int, path: str, why: str = "") -> OSError:
    return OSError(code, why or os.strerror(code), path)


def read_entry(draft: Draft, entry: ManifestEntry, size: int, offset: int, path: str) -> bytes:
    """Bytes of a draft's unchanged (stored) file, by range through the shared cache."""
    length = max(0, min(size, (entry.size or 0) - offset))
    if length == 0:
        return b""
    try:
        return draft.read_stored(entry, offset, length)
    except ArtifactFSError as e:
        log.error("read of %s failed: %s", path, e)
        raise oserr(errno.EIO, path) from e


@dataclass
class _Fd:
    draft: Draft
    rel: str
    fd: int
    writable: bool
    uses: int = 0
    dropped: bool = False


class PathFds:
    """(draft, path in draft) -> an fd on its staged file (thread-safe)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._fds: OrderedDict[tuple[int, str], _Fd] = OrderedDict()
        self._generation = 0

    @contextlib.contextmanager
    def writable(self, draft: Draft, rel: str) -> Iterator[int]:
        """An fd for writing the staged file at `rel` (copied up from the stored file first)."""
        found = self._get(draft, rel, write=True)
        if found is None:
            generation = self._generation
            fd = draft.open_file(rel, os.O_RDWR)  # copy-up or ENOENT/EISDIR, as a shell expects
            draft.writer_closed()  # not an "open writer": no release will ever say it closed
            found = self._keep(_Fd(draft, rel, fd, True), generation)
        try:
            yield found.fd
        finally:
            self._done(found)

    def created(
        self, draft: Draft, rel: str, mode: int, flags: int, owner: tuple[int, int] | None = None
    ) -> None:
        """Make the file at `rel` as `create(2)` with `flags` asks (O_EXCL, O_TRUNC...), owned
        by `owner`; its fd is kept for the writes that follow (read-write: reads come by path
        too)."""
        flags = (flags & ~(os.O_ACCMODE | os.O_APPEND)) | os.O_RDWR | os.O_CREAT
        fd = draft.open_file(rel, flags, mode, owner)
        draft.writer_closed()
        generation = self.forget_one(draft, rel)  # the name may have named another file
        self._done(self._keep(_Fd(draft, rel, fd, True), generation))

    @contextlib.contextmanager
    def readable(self, draft: Draft, rel: str) -> Iterator[int | ManifestEntry]:
        """An fd on the staged file at `rel`, or the stored entry when it was never changed."""
        found = self._get(draft, rel, write=False)
        if found is None:
            generation = self._generation
            with draft.lock:
                node = draft.node(rel)
                if node.is_dir:
                    raise oserr(errno.EISDIR, rel)
                if node.reads_stored:  # unchanged, or a placeholder (metadata only)
                    assert node.entry is not None
                    entry = node.entry
                else:
                    entry = None
                    fd = draft.open_staged_readonly(rel)
            if entry is not None:
                yield entry
                return
            found = self._keep(_Fd(draft, rel, fd, False), generation)
        try:
            yield found.fd
        finally:
            self._done(found)

    def _get(self, draft: Draft, rel: str, *, write: bool) -> _Fd | None:
        key = (id(draft), rel)
        with self._lock:
            found = self._fds.get(key)
            if found is None or found.draft is not draft:
                return None
            if write and not found.writable:
                closing = self._drop(key)  # a reader's fd: reopen for writing (copy-up checks)
                for fd in closing:
                    os.close(fd)
                return None
            self._fds.move_to_end(key)
            found.uses += 1
            return found

    def _keep(self, new: _Fd, generation: int) -> _Fd:
        closing: list[int] = []
        with self._lock:
            new.uses = 1
            if generation != self._generation:
                new.dropped = True  # a rename/unlink ran meanwhile: use once, remember nothing
                return new
            key = (id(new.draft), new.rel)
            if key in self._fds:
                closing += self._drop(key)
            self._fds[key] = new
            while len(self._fds) > self.limit:
                oldest = next(iter(self._fds))
                closing += self._drop(oldest, bump=False)
        for fd in closing:
            os.close(fd)
        return new

    def _done(self, found: _Fd) -> None:
        with self._lock:
            found.uses -= 1
            close = found.dropped and found.uses == 0
        if close:
            os.close(found.fd)

    def _drop(self, key: tuple[int, str], *, bump: bool = True) -> list[int]:
        """Forget one entry (lock held); returns the fd to close now if nothing uses it."""
        if bump:
            self._generation += 1
        found = self._fds.pop(key, None)
        if found is None:
            return []
        found.dropped = True
        return [found.fd] if found.uses == 0 else []

    def forget(self, draft: Draft, rel: str) -> int:
        """`rel` and everything below it may name other files from now on; returns the
        generation this makes (an fd opened just before may be kept under it)."""
        prefix = f"{rel}/" if rel else ""
        with self._lock:
            self._generation += 1
            generation = self._generation
            keys = [
                k
                for k, v in self._fds.items()
                if v.draft is draft and (not rel or v.rel == rel or v.rel.startswith(prefix))
            ]
            closing = [fd for k in keys for fd in self._drop(k, bump=False)]
        for fd in closing:
            os.close(fd)
        return generation

    def forget_one(self, draft: Draft, rel: str) -> int:
        """`forget` for a name that has no entries below it (a file just created): one key,
        not a scan of the table."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            closing = self._drop((id(draft), rel), bump=False)
        for fd in closing:
            os.close(fd)
        return generation

    def forget_named(self, qualified: set[str]) -> None:
        """Every entry of the drafts named `entity/project/name` in `qualified` (a commit)."""
        with self._lock:
            self._generation += 1
            keys = [k for k, v in self._fds.items() if v.draft.qualified_name in qualified]
            closing = [fd for k in keys for fd in self._drop(k, bump=False)]
        for fd in closing:
            os.close(fd)

    def __len__(self) -> int:
        return len(self._fds)
