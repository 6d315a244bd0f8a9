"""Open file descriptors on one object's cached bytes, held for as long as a reader keeps it open.

WHY: the mount gets a read request per 128 KiB-1 MiB; opening, fstat-ing and closing the cached
file (or block) for each one, then copying its bytes through Python, capped a cached 1 GiB read
at ~0.6 GB/s. A handle opens each cached file once, checks its length once, and hands out
`(fd, position, length)` spans that the caller can let libfuse read in C.

Safety: fds are only closed by `close()`, which its owner calls once no reply that uses them can
still be in flight (the mount's OpenFiles, fusefs/openfiles.py, closes a retired handle only
when no FUSE thread's latest reply was served from it: under no_open there is no `release`). A span is never handed out for a file that was not
complete (length-checked, as `BlobCache.read` does) and intact: when a handle takes an fd, the
file is checked against its seal (seals.py; a changed file is discarded and read again through
the cache), and every `spans` call compares an fstat of the fds it hands out with what was
checked (~1 us per read; a held file written meanwhile is dropped, its read served by the
fallback path, so wrong bytes never reach the kernel's page cache either). A cached file that
is evicted or replaced meanwhile stays readable through its fd (Linux keeps unlinked inodes
alive). Whole objects are preferred over blocks.

A handle holds at most `max_fds` block fds; past that, `spans` returns None and the caller takes
the ordinary copying path (`BlobCache.read`), so a reader of a huge object cannot exhaust the
process's fd limit.

A reader that goes sequentially from offset 0 past the first block joins a background whole fill
(wholefill.py) when the source asks for parallel reads (remote stores): its reads then wait for
their parts to land in the fill's single file and are served from one fd on it, which becomes
the verified whole object once published. Random readers never start one.

Bytes are checked as the cache says (`ReadCheck`, blockdigests.py): a big entry without block
digests but with an MD5 is served only from its verified whole object, like a small one (the
read falls back to `BlobCache.read`, which fetches and verifies it first); blocks and fill
parts of an entry with digests were checked when they were fetched.

A handle sees the cache only through `HandleCache` (BlobCache implements it), so this module
does not import the blob cache, which builds handles (`BlobCache.open_handle`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Container
from typing import Protocol

from artifactfs.cache.blockdigests import UNCHECKED, BlockDigests, ReadCheck
from artifactfs.cache.blocks import block_range, block_span
from artifactfs.cache.source import SourceFactory
from artifactfs.cache.wholefill import WholeFill

Span = tuple[int, int, int]
"""(fd, position in that file, length)."""

REORDER = 16 << 20
"""How far apart consecutive reads may land and still count as one sequential stream: the
kernel's parallel readahead requests arrive out of order by several MiB (measured: 5 MiB)."""


class HandleCache(Protocol):
    """What a handle needs of the cache that made it."""

    block_size: int
    block_threshold: int
    stall_seconds: float

    def object_file(self, key: str) -> str:
        """Where the whole object of `key` lives."""
        ...

    def block_file(self, key: str, index: int) -> str:
        """Where block `index` of `key` lives."""
        ...

    def touch(self, path: str) -> None:
        """Mark a cached file as just used."""
        ...

    def intact(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        *,
        md5_hex: str | None = None,
        block: bool = False,
    ) -> bool:
        """Whether the open cached file is still what was verified (else it is discarded)."""
        ...

    def served(self, nbytes: int) -> None:
        """Count a read served from cached files (a hit)."""
        ...

    def whole_fill(
        self,
        key: str,
        size: int,
        source: SourceFactory,
        md5_hex: str | None,
        digests: BlockDigests | None = None,
    ) -> tuple[WholeFill, int] | None:
        """Join or start the background whole fill of `key` (None: not worth one)."""
        ...

    def readahead(
        self,
        key: str,
        size: int,
        offset: int,
        length: int,
        last_block: int,
        source: SourceFactory,
        held: Container[int] = (),
        digests: BlockDigests | None = None,
    ) -> None:
        """Queue the blocks a sequential reader wants next, skipping those `held`."""
        ...


class ObjectHandle:
    """Cached-file fds of one object for one open file (thread-safe)."""

    def __init__(
        self,
        cache: HandleCache,
        key: str,
        size: int,
        source: SourceFactory,
        max_fds: int = 64,
        md5_hex: str | None = None,
        check: ReadCheck = UNCHECKED,
    ) -> None:
        self.cache = cache
        self.check = check
        self.key = key
        self.size = size
        self.source = source
        self.md5_hex = md5_hex
        self.max_fds = max_fds
        self._whole: int | None = None
        self._blocks: dict[int, int] = {}
        # fd -> its file's ctime when it was checked (any write, truncate, chmod or unlink of
        # the inode moves it); fds of files found changed are retired (closed in close(), as
        # the kernel may still be reading them)
        self._ctimes: dict[int, int] = {}
        self._retired: list[int] = []
        self._lock = threading.RLock()  # _whole_span may retire an fd under it
        self._closed = False
        self._fill: WholeFill | None = None
        self._fill_fd: int | None = None
        self._fill_tried = False
        self._run_from_zero = False
        self._run_bytes = 0
        self._end = 0
        self._fresh: int | None = None
        """An fd checked (fstat + seal) just now: the read that follows skips its fstat."""
        self._try_whole()

    def _try_whole(self) -> bool:
        path = self.cache.object_file(self.key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        st = os.fstat(fd)
        if st.st_size != self.size:
            os.close(fd)  # a wrong-sized file: BlobCache.read discards it on the slow path
            return False
        if not self.cache.intact(path, fd, st, md5_hex=self.md5_hex):
            os.close(fd)  # discarded: the slow path fetches it again
            return False
        self._whole = fd
        self._ctimes[fd] = st.st_ctime_ns
        self._fresh = fd
        self.cache.touch(path)
        return True

    def _find_whole(self) -> bool:
        """Take the whole object if it is cached now (one failed open when it is not)."""
        with self._lock:
            if self._closed:
                return False
            return self._whole is not None or self._try_whole()

    def _unchanged(self, fd: int) -> bool:
        """Whether a held fd's file is as it was when checked (one fstat, ~1 us)."""
        try:
            return os.fstat(fd).st_ctime_ns == self._ctimes.get(fd)
        except OSError:  # closed by close() meanwhile: hand out nothing
            return False

    def _retire(self, fd: int, path: str, *, block: bool = False) -> None:
        """A held file changed after its check: never hand it out again, drop it from the
        cache (if the path still names it), keep the fd open until close()."""
        self._retired.append(fd)
        if self._whole == fd:
            self._whole = None
        for index, bfd in list(self._blocks.items()):
            if bfd == fd:
                del self._blocks[index]
        try:
            st = os.fstat(fd)
        except OSError:
            return
        self.cache.intact(path, fd, st, md5_hex=self.md5_hex, block=block)

    @property
    def whole(self) -> bool:
        return self._whole is not None

    def verified_whole(self) -> tuple[str, os.stat_result] | None:
        """The whole object's path and an fstat of it that is its fingerprint at its seal
        check (its ctime has not moved since), while this handle serves it whole (None
        otherwise): another reader that finds the file with this fingerprint reads the
        verified bytes (ctime moves with any write and cannot be set back)."""
        with self._lock:
            fd = self._whole
            if fd is None:
                return None
            try:
                st = os.fstat(fd)
            except OSError:
                return None
            if st.st_ctime_ns != self._ctimes.get(fd):
                return None  # changed since its check: the next read retires it
            return self.cache.object_file(self.key), st

    @property
    def full(self) -> bool:
        """It holds `max_fds` block fds: reads of other blocks are not served by it."""
        return len(self._blocks) >= self.max_fds

    @property
    def filling(self) -> bool:
        """A background whole fill this handle joined is still fetching parts."""
        fill = self._fill
        return fill is not None and not fill.complete and not fill.failed

    def spans(self, offset: int, length: int) -> list[Span] | None:
        """Where bytes [offset, offset+length) are cached, or None if some are not (yet)."""
        end = min(offset + length, self.size)
        if end <= offset:
            return []
        if self._whole is not None:
            spans = self._whole_span(offset, end)
            if spans is not None:
                return spans
        if self.size < self.cache.block_threshold or self.check.whole:
            # small objects are only ever cached whole, and big ones without block digests
            # only served whole: maybe filled since this handle was made
            return self._whole_span(offset, end) if self._find_whole() else None
        fill_spans = self._fill_spans(offset, end)
        if fill_spans is not None:
            return fill_spans
        bs = self.cache.block_size
        out: list[Span] = []
        blocks = block_range(offset, end - offset, self.size, bs)
        with self._lock:
            if self._closed:
                return None
            for index in blocks:
                fd = self._blocks.get(index)
                if fd is None:
                    fd = self._open_block(index)
                    if fd is None:
                        # blocks are dropped once the whole object is assembled: use that
                        return self._whole_span(offset, end) if self._try_whole() else None
                elif not self._unchanged(fd):
                    self._retire(fd, self.cache.block_file(self.key, index), block=True)
                    return None
                start, blen = block_span(index, self.size, bs)
                lo = max(offset, start)
                hi = min(end, start + blen)
                out.append((fd, lo - start, hi - lo))
        self.cache.served(end - offset)
        self.cache.readahead(
            self.key,
            self.size,
            offset,
            end - offset,
            blocks[-1],
            self.source,
            self._blocks,
            self.check.blocks,
        )
        return out

    def _fill_spans(self, offset: int, end: int) -> list[Span] | None:
        """Serve from the background whole fill, joining one when reads are sequential from 0."""
        with self._lock:
            if self._closed:
                return None
            bs = self.cache.block_size
            if offset == 0:
                self._run_from_zero, self._run_bytes = True, 0
            elif abs(offset - self._end) > REORDER:  # a jump: random access
                self._run_from_zero = False
            self._end = max(self._end, end)
            self._run_bytes += end - offset
            # One 1 MiB read at 0 makes the kernel read ahead up to 4 MiB (a block): only a
            # reader that goes on past that is streaming the file.
            start = (
                self._fill is None
                and not self._fill_tried
                and self._run_from_zero
                and offset >= bs
                and self._run_bytes >= bs
            )
            if start:
                self._fill_tried = True
                joined = self.cache.whole_fill(
                    self.key, self.size, self.source, self.md5_hex, self.check.blocks
                )
                if joined is not None:
                    self._fill, self._fill_fd = joined
            fill, fd = self._fill, self._fill_fd
        if fill is None or fd is None or not fill.wait(offset, end, self.cache.stall_seconds):
            return None
        if fill.published:
            with self._lock:
                if self._whole is None and fd not in self._retired:
                    # the same inode, now the verified, sealed object (closed in close())
                    path = self.cache.object_file(self.key)
                    st = os.fstat(fd)
                    if self.cache.intact(path, fd, st, md5_hex=self.md5_hex):
                        self._whole = fd
                        self._ctimes[fd] = st.st_ctime_ns
                    else:
                        self._retired.append(fd)
                        return None
            if self._whole == fd:
                return self._whole_span(offset, end)
            return None
        self.cache.served(end - offset)
        return [(fd, offset, end - offset)]

    def _whole_span(self, offset: int, end: int) -> list[Span] | None:
        fd = self._whole
        if fd is None:
            return None
        if self._fresh == fd:
            self._fresh = None
        elif not self._unchanged(fd):
            with self._lock:
                if self._whole == fd:
                    self._retire(fd, self.cache.object_file(self.key))
            return None
        self.cache.served(end - offset)
        return [(fd, offset, end - offset)]

    def _open_block(self, index: int) -> int | None:
        if len(self._blocks) >= self.max_fds:
            return None
        path = self.cache.block_file(self.key, index)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        _, blen = block_span(index, self.size, self.cache.block_size)
        st = os.fstat(fd)
        if st.st_size != blen or not self.cache.intact(path, fd, st, block=True):
            os.close(fd)
            return None
        self._blocks[index] = fd
        self._ctimes[fd] = st.st_ctime_ns
        self.cache.touch(path)
        return fd

    def stop_fill(self) -> None:
        """Stop feeding the background fill (it is cancelled when no one else reads it); the
        fds stay open until `close`, since a reply may still be reading them."""
        with self._lock:
            fill, self._fill = self._fill, None
            self._fill_tried = True
        if fill is not None:
            fill.detach()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fds = set(self._blocks.values())
            self._blocks.clear()
            if self._whole is not None:
                fds.add(self._whole)
                self._whole = None
            if self._fill_fd is not None:
                fds.add(self._fill_fd)
                self._fill_fd = None
            fds.update(self._retired)
            self._retired.clear()
            self._ctimes.clear()
            fill, self._fill = self._fill, None
        for fd in fds:
            os.close(fd)
        if fill is not None:
            fill.detach()
