"""Range reads of big objects, block by block, with sequential read-ahead.

Apart from the blob cache because blocks are their own regime: an entry of known size at or
above the cache's `block_threshold` is never fetched whole for a range read; only the blocks a
read overlaps are fetched (one ranged read each, once per process at a time), checked for their
exact length and against the entry's block digests (blockdigests.py; a block that does not
match is never stored or served: DigestMismatchError, one log line) and sealed with a CRC-32 of
their bytes (seals.py), so a block changed after its fill is noticed on use and fetched again.
Callers only come here with digests, or for entries nothing anchors (BlobCache.read decides). One process at a time fetches a block (a
fill lock, filllock.py); a read-ahead never waits for another process's fill of a block. A
reader going forward gets the next blocks fetched in the background (prefetch.py); handles.py
asks for the same read-ahead when it serves reads from block fds.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Container
from pathlib import Path

import artifactfs.cache.notices as notices
from artifactfs.cache.accounting import SizeLimit
from artifactfs.cache.blockdigests import BlockDigests
from artifactfs.cache.blocks import (
    NO_SPACE,
    atomic_write,
    block_count,
    block_range,
    block_span,
)
from artifactfs.cache.layout import CacheFiles
from artifactfs.cache.locks import KeyLocks
from artifactfs.cache.prefetch import Prefetcher, SequentialDetector
from artifactfs.cache.seals import crc32_of
from artifactfs.cache.source import SourceFactory, SourceMemo
from artifactfs.cache.stats import StatsRecorder
from artifactfs.errors import CacheError, DigestMismatchError

log = logging.getLogger(__name__)


class BlockReader:
    """Block reads, block fills and read-ahead for one cache (thread-safe)."""

    def __init__(
        self,
        files: CacheFiles,
        *,
        block_size: int,
        locks: KeyLocks,
        stats: StatsRecorder,
        sources: SourceMemo,
        limit: SizeLimit,
        readahead_blocks: int,
        prefetch_workers: int,
        filling_whole: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self.files = files
        self.block_size = block_size
        self._locks = locks
        self._stats = stats
        self._sources = sources
        self._limit = limit
        self._filling_whole = filling_whole  # a whole fill of the key runs: no read-ahead
        self._detector = SequentialDetector(max_blocks=readahead_blocks)
        self._prefetcher = Prefetcher(prefetch_workers if readahead_blocks > 0 else 0)

    def read(
        self,
        key: str,
        size: int,
        offset: int,
        length: int,
        source: SourceFactory,
        digests: BlockDigests | None = None,
    ) -> bytes:
        """Bytes [offset, offset+length) of an object of `size` bytes, from its blocks (each
        fetched one checked against `digests` when given)."""
        blocks = block_range(offset, length, size, self.block_size)
        parts: list[bytes] = []
        missed = False
        for index in blocks:
            start, blen = block_span(index, size, self.block_size)
            lo = max(offset, start) - start
            hi = min(offset + length, start + blen) - start
            part, was_hit = self._slice(key, index, size, lo, hi - lo, source, digests)
            missed = missed or not was_hit
            parts.append(part)
        data = b"".join(parts)
        self._stats.add(bytes_served=len(data), **({"misses": 1} if missed else {"hits": 1}))
        if blocks:
            self.readahead(key, size, offset, len(data), blocks[-1], source, digests=digests)
        return data

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
        """Tell the sequential detector about a read that ended in `last_block` and queue the
        blocks it wants next, skipping those cached already or `held` by the caller."""
        n_blocks = block_count(size, self.block_size)
        if self._filling_whole(key):  # it fetches these blocks' bytes already
            return
        for index in self._detector.observe(key, offset, length, last_block, n_blocks):
            if index in held or os.path.exists(self.files.block_file(key, index)):
                continue
            fill = functools.partial(self.fill, key, index, size, source, True, digests)
            if not self._prefetcher.submit(key, index, fill):
                self._detector.rewind(key, index)
                break

    def _slice(
        self,
        key: str,
        index: int,
        size: int,
        lo: int,
        n: int,
        source: SourceFactory,
        digests: BlockDigests | None,
    ) -> tuple[bytes, bool]:
        """Bytes [lo, lo+n) of block `index`, and whether they came from the cache."""
        path = self.files.block_file(key, index)
        _, blen = block_span(index, size, self.block_size)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        else:
            try:
                st = os.fstat(fd)
                data = None
                if st.st_size != blen:
                    self.files.discard(
                        Path(path), f"has {st.st_size} bytes, expected {blen}", fd=fd
                    )
                elif self.files.intact(path, fd, st, block=True):
                    data = os.pread(fd, n, lo)
            finally:
                os.close(fd)
            if data is not None:
                self.files.touch(path)
                return data, True
        block = self.fill(key, index, size, source, False, digests)
        return block[lo : lo + n], False

    def fill(
        self,
        key: str,
        index: int,
        size: int,
        source: SourceFactory,
        prefetch: bool,
        digests: BlockDigests | None = None,
    ) -> bytes:
        """Fetch block `index` into the cache (once per process at a time, and once across
        processes unless one stalls) and return it.

        If the disk is full the block is returned anyway (not stored), so readers still work.
        A read-ahead (`prefetch`) that finds another process fetching the block leaves it to
        that process and returns b"".
        """
        path = Path(self.files.block_file(key, index))
        start, blen = block_span(index, size, self.block_size)
        with self._locks.hold((key, index)):
            data = self._filled(path, blen)
            if data is not None:
                return data  # filled by another thread (or prefetch) while we waited
            with self.files.fill_locks.hold(f"{key}.{index}", wait=not prefetch) as lock:
                if lock is None and prefetch:
                    return b""  # another process is fetching it
                if lock is not None and lock.waited:
                    data = self._filled(path, blen)
                    if data is not None:
                        self._stats.add(fill_waits=1)
                        return data  # fetched by the other process
                data = self._fetch(key, index, start, blen, size, source, prefetch)
                self._check(key, index, start, data, digests, prefetch)
                # the seal's checksum: the block's digest when it is one block of the digests
                # (hashed by the check already), else a CRC-32 (seals.py)
                sha = digests.digest_of(start, blen) if digests is not None else None
                try:
                    st = atomic_write(
                        self.files.tmp,
                        path,
                        lambda f: f.write(data),
                        on_tmp=lock.record if lock is not None else None,
                    )
                    if sha is not None:
                        self.files.seal(str(path), st, sha256=sha)
                    else:
                        self.files.seal(str(path), st, crc32=crc32_of(data))
                except CacheError as e:
                    if e.errno not in NO_SPACE:
                        raise
                    notices.warn(  # once per cause and minute, not once per block
                        log, f"full:{self.files.root}", "%s; serving blocks without caching them", e
                    )
                    self._stats.add(direct_reads=1)
                    return data
        self._limit.added(blen, protect=str(path))
        return data

    def _filled(self, path: Path, blen: int) -> bytes | None:
        """The block at `path` if it is complete and intact (filled by someone else)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size != blen or not self.files.intact(str(path), fd, st, block=True):
                return None
            return os.pread(fd, blen, 0)
        finally:
            os.close(fd)

    def _fetch(
        self,
        key: str,
        index: int,
        start: int,
        blen: int,
        size: int,
        source: SourceFactory,
        prefetch: bool,
    ) -> bytes:
        data = self._sources.get(key, source).read_range(start, blen)
        self._stats.add(
            bytes_fetched=len(data),
            blocks_fetched=1,
            **({"blocks_prefetched": 1} if prefetch else {}),
        )
        if len(data) != blen:
            raise DigestMismatchError(
                f"block {index} of {key}: source returned {len(data)} bytes, expected {blen} "
                f"(object of {size} bytes changed or is truncated)"
            )
        return data

    def _check(
        self,
        key: str,
        index: int,
        start: int,
        data: bytes,
        digests: BlockDigests | None,
        prefetch: bool,
    ) -> None:
        """DigestMismatchError (and one log line, unless a read-ahead: the foreground read that
        needs the block reports it) if `data` is not what the commit recorded."""
        if digests is None:
            return
        bad = digests.bad_block(start, data)
        if bad is None:
            return
        self._stats.add(blocks_rejected=1)
        msg = (
            f"block {index} of {key} (bytes {start}-{start + len(data) - 1}) does not match "
            "the digest recorded at commit: the stored object was changed; not served"
        )
        if not prefetch:
            log.error("%s", msg)
        raise DigestMismatchError(msg)

    def pending(self) -> int:
        """Read-ahead fills queued or running."""
        return self._prefetcher.pending()

    def shutdown(self) -> None:
        """Stop read-ahead threads (queued prefetches are dropped)."""
        self._prefetcher.shutdown(wait=True)
