"""The shared, content-addressed local cache (DESIGN §6).

One cache per user, shared by every mount and process. Objects are named by key (`md5/<hex>` for
stored content, `ref/<sha256>` for references); layout.py says where their files live. Every file
appears by an atomic rename of a complete temporary file, so readers (in any process) never see a
partial one. A file's mtime is its last use, which makes eviction least-recently-used across
processes without any shared index (see eviction.py; accounting.py decides when).

Every fill is sealed once verified (seals.py) and checked against its seal on every use (per
open, handle or range read; a memo makes the repeated check a dict lookup), so a cached file
changed after its verification is dropped and fetched again, never served; `verify_all` (the
`artifactfs cache verify` scrub) re-hashes everything. One process at a time fills a key
(filllock.py): the others wait for it and find it cached.

Small entries (below `block_threshold`) are fetched whole and verified (objectfill.py). Big
entries read by range are cached in blocks of `block_size`, with sequential read-ahead
(blockreads.py), each checked against the entry's block digests recorded at commit; a big entry
without digests is fetched whole and verified before a byte is served (blockdigests.py: which
entries are checked how, and the `unverified_ranges` opt-out). A sequential
reader of a big entry through a handle (handles.py) joins a background whole fill
(wholefill.py). Defaults: 4 MiB blocks and a 16 MiB threshold. 4 MiB is one ranged GET of
~10-40 ms at 100-400 MB/s, which keeps the first byte of an uncached entry well under the
mount's 50 ms target on a LAN/loopback backend, while per-request overhead (~1 ms) stays small
against the transfer; entries under 16 MiB are at most four blocks, where one whole, verified
GET costs no more and needs one file instead of several.

`BlobCache` is the one object callers hold: it wires those parts together, and itself answers
the questions about whole objects (is it cached and intact, fetch it, read from it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Container
from pathlib import Path
from typing import BinaryIO

from artifactfs.cache.accounting import PruneResult, SizeLimit
from artifactfs.cache.blockdigests import BlockDigests, drop_unchecked_blocks
from artifactfs.cache.blockreads import BlockReader
from artifactfs.cache.eviction import CacheInfo
from artifactfs.cache.handles import ObjectHandle
from artifactfs.cache.layout import CacheFiles, content_key, reference_key
from artifactfs.cache.locks import KeyLocks
from artifactfs.cache.objectfill import ObjectFiller, copy_file, copy_verified
from artifactfs.cache.rangereads import RangeReads
from artifactfs.cache.scrub import ScrubResult, scrub
from artifactfs.cache.source import Progress, SourceFactory, SourceMemo
from artifactfs.cache.stats import CacheStats, StatsRecorder
from artifactfs.cache.wholefill import WholeFill
from artifactfs.cache.wholefills import WholeFills

log = logging.getLogger(__name__)


class BlobCache(RangeReads):
    """A directory of immutable objects named by key, with atomic, verified fills.

    Thread-safe and safe for many processes sharing `root`. Sources are only constructed on a
    miss, so hits work with the backend unreachable.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        max_bytes: int = 20 << 30,
        *,
        block_size: int = 4 << 20,
        block_threshold: int = 16 << 20,
        readahead_blocks: int = 8,
        prefetch_workers: int = 4,
        low_water: float = 0.9,
        fill_stall_seconds: float | None = None,
        unverified_ranges: bool = False,
    ) -> None:
        if block_size <= 0 or block_threshold < 0:
            raise ValueError("block_size must be positive and block_threshold non-negative")
        self.root = Path(root)
        self.block_size = block_size
        self.block_threshold = block_threshold
        self.low_water = low_water
        self.unverified_ranges = unverified_ranges  # the opt-out (blockdigests.py)
        self._stats = StatsRecorder()
        # fill_stall_seconds: how long to wait for another process's fill that shows no progress
        self._files = CacheFiles(self.root, self._stats, stall_seconds=fill_stall_seconds)
        drop_unchecked_blocks(self._files.blocks, self._files.tmp)
        self.stall_seconds = self._files.fill_locks.stall_seconds
        """How long a reader waits on a whole fill that brings nothing (handles.py)."""
        self._locks = KeyLocks()
        self._limit = SizeLimit(self._files, max_bytes, low_water, self._stats)
        # A source is built on the first miss of a key and reused for its other blocks.
        self._sources = SourceMemo()
        self._filler = ObjectFiller(
            self._files, self._stats, block_size=block_size, block_threshold=block_threshold
        )
        self._blocks = BlockReader(
            self._files,
            block_size=block_size,
            locks=self._locks,
            stats=self._stats,
            sources=self._sources,
            limit=self._limit,
            readahead_blocks=readahead_blocks,
            prefetch_workers=prefetch_workers,
            filling_whole=lambda key: key in self._whole_fills.active,
        )
        self._whole_fills = WholeFills(
            self._files,
            part_size=block_size,
            sources=self._sources,
            stats=self._stats,
            limit=self._limit,
        )
        # A plain dict (single operations are atomic under the GIL; cachetools caches are not
        # thread-safe), emptied when it grows past a bound.
        self._verified: dict[tuple[str, int], bool] = {}

    @property
    def max_bytes(self) -> int:
        """The size limit (bytes) that eviction keeps the cache under."""
        return self._limit.max_bytes

    @property
    def _fills(self) -> dict[str, WholeFill]:
        """The background whole fills under way (tests wait for it to empty)."""
        return self._whole_fills.active

    # -- naming ----------------------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        """Where the whole object of `key` lives (whether or not it is cached)."""
        return self._files.object_path(key)

    def object_file(self, key: str) -> str:
        """path_for as a string (hot read path)."""
        return self._files.object_file(key)

    def block_dir(self, key: str) -> Path:
        return self._files.block_dir(key)

    def block_path(self, key: str, index: int) -> Path:
        return Path(self._files.block_file(key, index))

    def block_file(self, key: str, index: int) -> str:
        """block_path as a string (hot read path)."""
        return self._files.block_file(key, index)

    def touch(self, path: str) -> None:
        """Mark a cached file as just used (its LRU position)."""
        self._files.touch(path)

    # -- whole objects ---------------------------------------------------------------------
    def cached_path(
        self,
        key: str,
        size: int | None = None,
        md5_hex: str | None = None,
        *,
        verify: bool = False,
    ) -> Path | None:
        """The path of the whole object if it is cached and intact (and marks it recently used).

        A cached file whose size differs from `size` (when given), or that changed since it was
        verified (its seal, seals.py), is discarded, never served. With `verify=True` the file
        is also rehashed (once per file per process: a verified inode is remembered).
        """
        found = self.open_intact(key, size, md5_hex)
        if found is None:
            return None
        fd, st, md5 = found
        path = self.object_file(key)
        try:
            if verify and md5 is not None and (path, st.st_ino) not in self._verified:
                why = self._files.seals.verify(path, fd, md5_hex=md5)
                if why is not None:
                    self._files.discard(path, why, fd=fd)
                    return None
                if len(self._verified) > 4096:
                    self._verified.clear()
                self._verified[(path, st.st_ino)] = True
        finally:
            os.close(fd)
        self._files.touch(path)
        return Path(path)

    def open_intact(
        self, key: str, size: int | None, md5_hex: str | None
    ) -> tuple[int, os.stat_result, str | None] | None:
        """An fd on the cached whole object of `key`, its stat and MD5, when it is cached,
        `size` long (when given) and unchanged since its seal; else None (a wrong-sized or
        changed file is discarded, never served). The caller closes the fd. The one check
        behind cached_path, range reads of whole objects and passthrough's backing files."""
        path = self.object_file(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        st = os.fstat(fd)
        md5 = md5_hex or self._files.key_md5(key)
        if size is not None and st.st_size != size:
            self._files.discard(path, f"has {st.st_size} bytes, expected {size}", fd=fd)
        elif self._files.intact(path, fd, st, md5_hex=md5):
            return fd, st, md5
        os.close(fd)
        return None

    def ensure_file(
        self,
        key: str,
        size: int | None,
        source: SourceFactory,
        md5_hex: str | None = None,
        progress: Progress | None = None,
        *,
        verify: bool = False,
    ) -> Path:
        """Return the path of the whole object, fetching it on a miss.

        The fill is verified against `md5_hex` (when known) and `size` (when known) before it
        becomes visible; a mismatch raises DigestMismatchError and leaves nothing behind. Blocks
        already cached for the key are reused (only missing ranges are fetched) and dropped
        once the whole object is in place. A full disk raises CacheError with errno ENOSPC.
        Another process filling the same key is waited for (filllock.py), not duplicated.
        The returned path may be evicted later by another process: open it promptly.
        """
        hit = self.cached_path(key, size, md5_hex, verify=verify)
        if hit is not None:
            self._stats.add(hits=1)
            return hit
        with self._locks.hold(key):
            hit = self.cached_path(key, size, md5_hex, verify=verify)
            if hit is not None:  # another thread filled it while we waited
                self._stats.add(hits=1)
                return hit
            path = self.path_for(key)
            with self._files.fill_locks.hold(key) as lock:
                if lock is None or lock.waited:  # another process filled it, or stalled
                    hit = self.cached_path(key, size, md5_hex, verify=verify)
                    if hit is not None:
                        self._stats.add(hits=1, fill_waits=1)
                        return hit
                self._stats.add(misses=1)
                self._filler.fill(key, path, size, source, md5_hex, progress, lock)
        self._sources.forget(key)
        self._limit.added(path.stat().st_size if path.exists() else 0, protect=str(path))
        return path

    def fetch_to(
        self,
        key: str,
        size: int | None,
        source: SourceFactory,
        md5_hex: str | None,
        dest: BinaryIO,
        progress: Progress | None = None,
    ) -> int:
        """Write the object's bytes into `dest` WITHOUT caching them (W&B's skip_cache; what
        download() falls back to when the cache disk is full): copied from the cache when it
        holds the object intact, else streamed from the source and verified against `md5_hex`
        and `size` (DigestMismatchError). Errors writing `dest` (its disk full) are raised as
        the OSError they are. Returns the byte count."""
        hit = self.cached_path(key, size, md5_hex)
        if hit is not None:
            self._stats.add(hits=1)
            return copy_file(hit, dest, progress)
        self._stats.add(misses=1, direct_reads=1)
        n = copy_verified(key, size, source(), md5_hex, dest, progress)
        self._stats.add(bytes_fetched=n)
        return n

    def open_verified(self, key: str, size: int, md5_hex: str | None = None) -> int | None:
        """An fd on the whole object if it is cached, `size` long and intact (open_intact),
        marked as used. The caller owns the fd (a mount in passthrough mode hands it to the
        kernel as the file's backing file)."""
        found = self.open_intact(key, size, md5_hex)
        if found is None:
            return None
        self._files.touch(self.object_file(key))
        return found[0]

    def verified_object(
        self, key: str, size: int, md5_hex: str | None = None
    ) -> tuple[str, os.stat_result] | None:
        """The cached whole object's path and its fstat at this check, if it is intact: for a
        reader that compares that fingerprint itself before each read (the mount's C fast
        path). None if it is not cached whole or not intact."""
        found = self.open_intact(key, size, md5_hex)
        if found is None:
            return None
        os.close(found[0])
        return self.object_file(key), found[1]

    # -- for handles (handles.HandleCache) -------------------------------------------------
    def open_handle(
        self,
        key: str,
        size: int,
        source: SourceFactory,
        md5_hex: str | None = None,
        digests: BlockDigests | None = None,
    ) -> ObjectHandle:
        """Fds on the cached bytes of `key` for one long-lived reader (see handles.py)."""
        check = self.read_check(key, md5_hex, digests)
        return ObjectHandle(self, key, size, source, md5_hex=md5_hex, check=check)

    def whole_fill(
        self,
        key: str,
        size: int,
        source: SourceFactory,
        md5_hex: str | None,
        digests: BlockDigests | None = None,
    ) -> tuple[WholeFill, int] | None:
        """Join (or start) the background whole fill of `key` (WholeFills.join)."""
        return self._whole_fills.join(key, size, source, md5_hex, digests)

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
        """Keep sequential read-ahead going for a read served elsewhere (BlockReader)."""
        self._blocks.readahead(key, size, offset, length, last_block, source, held, digests)

    def intact(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        *,
        md5_hex: str | None = None,
        block: bool = False,
    ) -> bool:
        """Whether an open cached file is still what was verified; if not it is discarded."""
        return self._files.intact(path, fd, st, md5_hex=md5_hex, block=block)

    def served(self, nbytes: int) -> None:
        """Count a read of `nbytes` served from cached files by a handle."""
        self._stats.add(hits=1, bytes_served=nbytes)

    # -- size limit (accounting.py) --------------------------------------------------------
    def info(self) -> CacheInfo:
        """What is on disk now (all processes): bytes, whole objects, blocks, and the limit."""
        return self._limit.info()

    def prune(self, target_bytes: int | None = None) -> PruneResult:
        """Evict least-recently-used files until at most `target_bytes` (default: the limit)."""
        return self._limit.prune(target_bytes)

    def verify_all(self, progress: Progress | None = None) -> ScrubResult:
        """Re-hash every cached file against its seal (and whole objects against their key's
        MD5); drop what fails (`artifactfs cache verify`). `progress` gets bytes hashed."""
        return scrub(self._files, progress)

    # -- observability ---------------------------------------------------------------------
    def stats(self) -> CacheStats:
        """Counters of this process since the cache was opened (`.as_dict()` for JSON)."""
        return self._stats.snapshot()

    def wait_prefetch(self, timeout: float = 10.0) -> None:
        """Block until queued read-ahead finished (tests, benchmarks, clean shutdown)."""
        deadline = time.monotonic() + timeout
        while self._blocks.pending() and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Stop read-ahead threads (queued prefetches are dropped) and background fills."""
        self._blocks.shutdown()
        self._whole_fills.cancel_all()


__all__ = [
    "BlobCache",
    "CacheInfo",
    "CacheStats",
    "PruneResult",
    "ScrubResult",
    "content_key",
    "reference_key",
]
