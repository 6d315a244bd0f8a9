"""The shared, content-addressed local cache (DESIGN §6).

One cache per user, shared by every mount and process. Objects are named by key (`md5/<hex>` for
stored content, `ref/<sha256>` for references). Layout under the root:

    objects/<kind>/<2>/<rest>          whole objects, verified (md5 when known, size) before rename
    blocks/<kind>/<2>/<rest>/<index>   fixed-size blocks of big objects read by range
    tmp/                               private temporary files of fills under way
    .prune.lock                        flock held while one process evicts

Every file appears by an atomic rename of a complete temporary file, so readers (in any process)
never see a partial one. A file's mtime is its last use, which makes eviction least-recently-used
across processes without any shared index (see eviction.py).

Small entries (below `block_threshold`) are fetched whole and verified. Big entries read by range
are cached in blocks of `block_size`, with sequential read-ahead (prefetch.py); a block can only
be checked for its length (blocks.py says why). Defaults: 4 MiB blocks and a 16 MiB threshold.
4 MiB is one ranged GET of ~10-40 ms at 100-400 MB/s, which keeps the first byte of an uncached
entry well under the mount's 50 ms target on a LAN/loopback backend, while per-request overhead
(~1 ms) stays small against the transfer; entries under 16 MiB are at most four blocks, where one
whole, verified GET costs no more and needs one file instead of several.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cachetools import TTLCache

from artifactfs.cache import eviction
from artifactfs.cache.blocks import (
    NO_SPACE,
    atomic_write,
    block_count,
    block_range,
    block_span,
    read_file_range,
)
from artifactfs.cache.eviction import CacheInfo, Toucher
from artifactfs.cache.locks import KeyLocks
from artifactfs.cache.prefetch import Prefetcher, SequentialDetector
from artifactfs.cache.source import BlobSource, Progress, SourceFactory
from artifactfs.cache.stats import CacheStats, StatsRecorder
from artifactfs.cache.wholefill import WholeFill
from artifactfs.errors import CacheError, DigestMismatchError

if TYPE_CHECKING:
    from artifactfs.cache.handles import ObjectHandle

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[a-z0-9]+/[A-Za-z0-9_-]{3,}$")
HASH_CHUNK = 1 << 20
RESCAN_SECONDS = 60.0
"""How stale this process's idea of the cache's total size may get (other processes fill too)."""


def content_key(md5_hex: str) -> str:
    """Cache key of stored content with this MD5."""
    return f"md5/{md5_hex}"


def reference_key(ref: str, digest: str, version_id: str | None = None) -> str:
    """Cache key of a reference: the URL pinned by the digest (and version) it was logged with."""
    h = hashlib.sha256(f"{ref}\n{digest}\n{version_id or ''}".encode()).hexdigest()
    return f"ref/{h}"


@dataclass(frozen=True)
class PruneResult:
    removed_objects: int
    removed_bytes: int
    remaining_bytes: int


class _HashingWriter:
    """A file wrapper that hashes and counts what goes through it (one pass, no re-read)."""

    def __init__(self, f: BinaryIO, progress: Progress | None = None) -> None:
        self.f = f
        self.md5 = hashlib.md5()
        self.size = 0
        self.progress = progress

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        n = self.f.write(data)
        if self.progress is not None:
            self.progress(len(data))
        return n if n is not None else len(data)

    def flush(self) -> None:
        self.f.flush()


def _md5_of_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class BlobCache:
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
    ) -> None:
        if block_size <= 0 or block_threshold < 0:
            raise ValueError("block_size must be positive and block_threshold non-negative")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.block_size = block_size
        self.block_threshold = block_threshold
        self.low_water = low_water
        self._objects = self.root / "objects"
        self._blocks = self.root / "blocks"
        self._tmp = self.root / "tmp"
        try:
            for d in (self._objects, self._blocks, self._tmp):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot use cache directory {self.root}: {e}") from e
        self._locks = KeyLocks()
        self._stats = StatsRecorder()
        self._toucher = Toucher()
        self._detector = SequentialDetector(max_blocks=readahead_blocks)
        self._prefetcher = Prefetcher(prefetch_workers if readahead_blocks > 0 else 0)
        # A source is built on the first miss of a key and reused for its other blocks, so a
        # stream of block misses does not re-open (re-HEAD) the reference for every block.
        self._sources: TTLCache[str, BlobSource] = TTLCache(maxsize=256, ttl=60.0)
        self._sources_lock = threading.Lock()
        self._fills: dict[str, WholeFill] = {}
        self._fills_lock = threading.Lock()
        # Plain dicts (single operations are atomic under the GIL; cachetools caches are not
        # thread-safe), emptied when they grow past a bound.
        self._block_dirs: dict[str, str] = {}
        self._verified: dict[tuple[str, int], bool] = {}
        self._acct_lock = threading.Lock()
        self._approx_bytes: int | None = None
        self._scanned_at = 0.0

    # -- naming ----------------------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        """Where the whole object of `key` lives (whether or not it is cached)."""
        kind, name = self._split(key)
        return self._objects / kind / name[:2] / name[2:]

    def block_dir(self, key: str) -> Path:
        kind, name = self._split(key)
        return self._blocks / kind / name[:2] / name[2:]

    def block_path(self, key: str, index: int) -> Path:
        return Path(self._block_file(key, index))

    def _block_file(self, key: str, index: int) -> str:
        """block_path as a string, with the per-key directory memoized (hot read path)."""
        d = self._block_dirs.get(key)
        if d is None:
            if len(self._block_dirs) > 4096:
                self._block_dirs.clear()
            d = self._block_dirs[key] = str(self.block_dir(key))
        return f"{d}/{index:08d}"

    @staticmethod
    def _split(key: str) -> tuple[str, str]:
        if not _KEY.match(key):
            raise CacheError(f"invalid cache key {key!r}")
        kind, name = key.split("/", 1)
        return kind, name

    # -- whole objects ---------------------------------------------------------------------
    def cached_path(
        self,
        key: str,
        size: int | None = None,
        md5_hex: str | None = None,
        *,
        verify: bool = False,
    ) -> Path | None:
        """The path of the whole object if it is cached (and marks it recently used).

        A cached file whose size differs from `size` (when given) is discarded, never served.
        With `verify=True` the file is rehashed against `md5_hex` (once per file per process:
        a verified inode is remembered) and discarded on mismatch.
        """
        path = self.path_for(key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if size is not None and st.st_size != size:
            self._discard(path, f"has {st.st_size} bytes, expected {size}")
            return None
        if verify and md5_hex is not None and (str(path), st.st_ino) not in self._verified:
            actual = _md5_of_file(path)
            if actual != md5_hex:
                self._discard(path, f"has md5 {actual}, expected {md5_hex}")
                return None
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[(str(path), st.st_ino)] = True
        self._toucher.touch(str(path))
        return path

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
            self._stats.add(misses=1)
            path = self.path_for(key)
            self._fill_whole(key, path, size, source, md5_hex, progress)
        self._forget_source(key)
        self._account(path.stat().st_size if path.exists() else 0, protect=str(path))
        return path

    def _fill_whole(
        self,
        key: str,
        path: Path,
        size: int | None,
        source: SourceFactory,
        md5_hex: str | None,
        progress: Progress | None,
    ) -> None:
        holder: dict[str, _HashingWriter] = {}
        block_dir = self.block_dir(key)
        reuse_blocks = size is not None and size >= self.block_threshold and block_dir.is_dir()

        def fill(f: BinaryIO) -> None:
            writer = holder["w"] = _HashingWriter(f, progress)
            if reuse_blocks:
                assert size is not None
                self._assemble(key, size, source, writer)
            else:
                src = source()
                src.copy_to(writer, None)  # type: ignore[arg-type]
                self._stats.add(bytes_fetched=writer.size)

        def check() -> None:
            w = holder["w"]
            if md5_hex is not None and w.md5.hexdigest() != md5_hex:
                raise DigestMismatchError(
                    f"fetched object {key} has md5 {w.md5.hexdigest()}, expected {md5_hex}"
                )
            if size is not None and w.size != size:
                raise DigestMismatchError(
                    f"fetched object {key} has {w.size} bytes, expected {size}"
                )

        try:
            atomic_write(self._tmp, path, fill, check)
        except DigestMismatchError:
            if reuse_blocks:  # a bad block may be the cause: do not keep serving it
                shutil.rmtree(block_dir, ignore_errors=True)
            raise
        if reuse_blocks or block_dir.is_dir():
            shutil.rmtree(block_dir, ignore_errors=True)

    def _assemble(self, key: str, size: int, source: SourceFactory, writer: _HashingWriter) -> None:
        """Write the object from its cached blocks, fetching only the missing ones."""
        src: BlobSource | None = None
        for index in range(block_count(size, self.block_size)):
            start, length = block_span(index, size, self.block_size)
            try:
                data = read_file_range(self.block_path(key, index), 0, length + 1)
                if len(data) != length:
                    data = None  # a wrong-sized block: fetch it again
            except FileNotFoundError:
                data = None
            if data is None:
                if src is None:
                    src = source()
                data = src.read_range(start, length)
                self._stats.add(bytes_fetched=len(data))
            writer.write(data)

    # -- range reads -----------------------------------------------------------------------
    def read(
        self,
        key: str,
        size: int | None,
        offset: int,
        length: int,
        source: SourceFactory,
        md5_hex: str | None = None,
        *,
        verify: bool = False,
    ) -> bytes:
        """Bytes [offset, offset+length) of the object, from the cache, filling it on a miss.

        A cached whole object serves the read. Otherwise entries of known size at or above
        `block_threshold` are read block by block (only the overlapped blocks are fetched, with
        read-ahead when access is sequential); smaller ones are fetched whole and verified.
        When the cache cannot store (disk full) the bytes come straight from the source, so the
        reader still gets them (unverified beyond length; counted in stats.direct_reads).
        """
        if length <= 0 or offset < 0 or (size is not None and offset >= size):
            return b""
        data = self._read_whole(key, size, md5_hex, offset, length, verify)
        if data is not None:
            self._stats.add(hits=1, bytes_served=len(data))
            return data
        if size is None or size < self.block_threshold:
            try:
                path = self.ensure_file(key, size, source, md5_hex, verify=verify)
                data = read_file_range(path, offset, length)
            except CacheError as e:
                if e.errno not in NO_SPACE:
                    raise
                log.warning("%s; reading %s directly from its source", e, key)
                data = source().read_range(offset, length)
                self._stats.add(direct_reads=1, bytes_fetched=len(data))
            except FileNotFoundError:  # evicted between fill and open (another process)
                data = source().read_range(offset, length)
                self._stats.add(bytes_fetched=len(data))
            self._stats.add(bytes_served=len(data))
            return data
        return self._read_blocks(key, size, offset, length, source)

    def _read_whole(
        self,
        key: str,
        size: int | None,
        md5_hex: str | None,
        offset: int,
        length: int,
        verify: bool,
    ) -> bytes | None:
        path = self.path_for(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if size is not None and st.st_size != size:
                self._discard(path, f"has {st.st_size} bytes, expected {size}")
                return None
            unverified = (
                verify and md5_hex is not None and (str(path), st.st_ino) not in self._verified
            )
            # cached_path hashes (once per inode) and discards a corrupt file
            if unverified and self.cached_path(key, size, md5_hex, verify=True) is None:
                return None
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        self._toucher.touch(str(path))
        return data

    def _read_blocks(
        self, key: str, size: int, offset: int, length: int, source: SourceFactory
    ) -> bytes:
        blocks = block_range(offset, length, size, self.block_size)
        parts: list[bytes] = []
        missed = False
        for index in blocks:
            start, blen = block_span(index, size, self.block_size)
            lo = max(offset, start) - start
            hi = min(offset + length, start + blen) - start
            part, was_hit = self._block_slice(key, index, size, lo, hi - lo, source)
            missed = missed or not was_hit
            parts.append(part)
        data = b"".join(parts)
        self._stats.add(bytes_served=len(data), **({"misses": 1} if missed else {"hits": 1}))
        if blocks:
            n_blocks = block_count(size, self.block_size)
            for index in self._detector.observe(key, offset, len(data), blocks[-1], n_blocks):
                if os.path.exists(self._block_file(key, index)):
                    continue
                fill = functools.partial(self._fill_block, key, index, size, source, True)
                if not self._prefetcher.submit(key, index, fill):
                    self._detector.rewind(key, index)
                    break
        return data

    def _block_slice(
        self, key: str, index: int, size: int, lo: int, n: int, source: SourceFactory
    ) -> tuple[bytes, bool]:
        """Bytes [lo, lo+n) of block `index`, and whether they came from the cache."""
        path = self._block_file(key, index)
        _, blen = block_span(index, size, self.block_size)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        else:
            try:
                actual = os.fstat(fd).st_size
                data = os.pread(fd, n, lo) if actual == blen else None
            finally:
                os.close(fd)
            if data is not None:
                self._toucher.touch(path)
                return data, True
            self._discard(Path(path), f"has {actual} bytes, expected {blen}")
        block = self._fill_block(key, index, size, source, False)
        return block[lo : lo + n], False

    def _fill_block(
        self, key: str, index: int, size: int, source: SourceFactory, prefetch: bool
    ) -> bytes:
        """Fetch block `index` into the cache (once per process at a time) and return it.

        If the disk is full the block is returned anyway (not stored), so readers still work.
        """
        path = self.block_path(key, index)
        start, blen = block_span(index, size, self.block_size)
        with self._locks.hold((key, index)):
            try:
                data = read_file_range(path, 0, blen + 1)
                if len(data) == blen:
                    return data  # filled by another thread (or prefetch) while we waited
            except FileNotFoundError:
                pass
            data = self._source(key, source).read_range(start, blen)
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
            try:
                atomic_write(self._tmp, path, lambda f: f.write(data))
            except CacheError as e:
                if e.errno not in NO_SPACE:
                    raise
                log.warning("%s; serving block %d of %s without caching it", e, index, key)
                self._stats.add(direct_reads=1)
                return data
        self._account(blen, protect=str(path))
        return data

    def _source(self, key: str, factory: SourceFactory) -> BlobSource:
        with self._sources_lock:
            src = self._sources.get(key)
        if src is None:
            src = factory()
            with self._sources_lock:
                self._sources[key] = src
        return src

    def _forget_source(self, key: str) -> None:
        with self._sources_lock:
            self._sources.pop(key, None)

    def _discard(self, path: Path, why: str) -> None:
        log.warning("discarding corrupt cache file %s: it %s", path, why)
        self._stats.add(corrupt_discarded=1)
        self._toucher.forget(str(path))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    # -- background whole fills (wholefill.py) ----------------------------------------------
    def whole_fill(
        self, key: str, size: int, source: SourceFactory, md5_hex: str | None
    ) -> tuple[WholeFill, int] | None:
        """Join (or start) the background whole fill of `key` for one sequential reader.

        Returns the fill and the reader's own fd on its file, or None when a whole fill is not
        worth it: the object is cached already, or the source does not ask for parallel reads
        (`parallelism` hint <= 1, e.g. a local store: its block reads are as fast as they get).
        The caller must `detach()` the fill and close the fd when done.
        """
        src = self._source(key, source)
        workers = int(getattr(src, "parallelism", 1))
        if workers <= 1 or os.path.exists(self.path_for(key)):
            return None
        with self._fills_lock:
            fill = self._fills.get(key)
            if fill is not None and not fill.failed:
                fd = fill.attach()
                if fd is not None:
                    return fill, fd
            try:
                fill = WholeFill(
                    source=src,
                    size=size,
                    md5_hex=md5_hex,
                    dest=self.path_for(key),
                    tmp_dir=self._tmp,
                    part_size=self.block_size,
                    workers=workers,
                    cached_part=lambda index: self._block_file(key, index),
                    on_done=functools.partial(self._whole_fill_done, key),
                )
            except OSError as e:
                log.warning("cannot start a background fill of %s: %s", key, e)
                return None
            self._fills[key] = fill
            fd = fill.attach()
        assert fd is not None
        fill.start()
        self._stats.add(misses=1)
        return fill, fd

    def _whole_fill_done(self, key: str, fill: WholeFill) -> None:
        with self._fills_lock:
            if self._fills.get(key) is fill:
                del self._fills[key]
        self._stats.add(bytes_fetched=fill.fetched_bytes)
        if fill.published or isinstance(fill.error, DigestMismatchError):
            # blocks are superseded by the whole object, or one of them may be the bad part
            shutil.rmtree(self.block_dir(key), ignore_errors=True)
        if fill.published:
            self._forget_source(key)
            self._account(fill.size, protect=str(fill.dest))

    def open_handle(
        self, key: str, size: int, source: SourceFactory, md5_hex: str | None = None
    ) -> ObjectHandle:
        """Fds on the cached bytes of `key` for one long-lived reader (see handles.py)."""
        from artifactfs.cache.handles import ObjectHandle

        return ObjectHandle(self, key, size, source, md5_hex=md5_hex)

    # -- size limit ------------------------------------------------------------------------
    def _account(self, added: int, protect: str | None = None) -> None:
        """Track the cache's size after a fill and evict when it exceeds the limit."""
        with self._acct_lock:
            now = time.monotonic()
            if self._approx_bytes is None or now - self._scanned_at > RESCAN_SECONDS:
                self._approx_bytes = self.info().bytes
                self._scanned_at = now
            else:
                self._approx_bytes += added
            if self._approx_bytes <= self.max_bytes:
                return
            target = int(self.max_bytes * self.low_water)
            removed, removed_bytes, remaining = eviction.prune(
                self.root,
                self._objects,
                self._blocks,
                self._tmp,
                target,
                blocking=False,
                protect=protect,
            )
            if remaining >= 0:
                self._approx_bytes = remaining
                self._scanned_at = now
            self._stats.add(evicted_objects=removed, evicted_bytes=removed_bytes)

    def info(self) -> CacheInfo:
        """What is on disk now (all processes): bytes, whole objects, blocks, and the limit."""
        files = eviction.scan(self._objects, self._blocks)
        return eviction.summarize(files, self.root, self.max_bytes)

    def prune(self, target_bytes: int | None = None) -> PruneResult:
        """Evict least-recently-used files until at most `target_bytes` (default: the limit)."""
        target = self.max_bytes if target_bytes is None else target_bytes
        removed, removed_bytes, remaining = eviction.prune(
            self.root, self._objects, self._blocks, self._tmp, target, blocking=True
        )
        with self._acct_lock:
            self._approx_bytes = remaining
            self._scanned_at = time.monotonic()
        self._stats.add(evicted_objects=removed, evicted_bytes=removed_bytes)
        return PruneResult(removed, removed_bytes, remaining)

    # -- observability ---------------------------------------------------------------------
    def stats(self) -> CacheStats:
        """Counters of this process since the cache was opened (`.as_dict()` for JSON)."""
        return self._stats.snapshot()

    def wait_prefetch(self, timeout: float = 10.0) -> None:
        """Block until queued read-ahead finished (tests, benchmarks, clean shutdown)."""
        deadline = time.monotonic() + timeout
        while self._prefetcher.pending() and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Stop read-ahead threads (queued prefetches are dropped) and background fills."""
        self._prefetcher.shutdown(wait=True)
        with self._fills_lock:
            fills = list(self._fills.values())
        for fill in fills:
            fill.cancel()


__all__ = ["BlobCache", "CacheInfo", "CacheStats", "PruneResult", "content_key", "reference_key"]
