"""The background whole fills under way in this process, at most one per key.

WHY apart from wholefill.py: a `WholeFill` is one object landing part by part; `WholeFills` is
the table that makes every sequential reader of one object join the same fill (or wait for
another process's), and that cleans up after a fill ends. See wholefill.py for the guarantees.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

import artifactfs.cache.notices as notices
from artifactfs.cache.accounting import SizeLimit
from artifactfs.cache.blockdigests import BlockDigests
from artifactfs.cache.layout import CacheFiles
from artifactfs.cache.source import SourceFactory, SourceMemo
from artifactfs.cache.stats import StatsRecorder
from artifactfs.cache.wholefill import WholeFill
from artifactfs.errors import DigestMismatchError

log = logging.getLogger("artifactfs.cache.wholefill")


class WholeFills:
    """The background whole fills under way in this process, at most one per key, for the
    sequential readers that join them (see `join`)."""

    def __init__(
        self,
        files: CacheFiles,
        *,
        part_size: int,
        sources: SourceMemo,
        stats: StatsRecorder,
        limit: SizeLimit,
    ) -> None:
        self.files = files
        self.part_size = part_size
        self._sources = sources
        self._stats = stats
        self._limit = limit
        self.active: dict[str, WholeFill] = {}
        self._lock = threading.Lock()

    def join(
        self,
        key: str,
        size: int,
        source: SourceFactory,
        md5_hex: str | None,
        digests: BlockDigests | None = None,
    ) -> tuple[WholeFill, int] | None:
        """Join (or start) the background whole fill of `key` for one sequential reader.

        Returns the fill and the reader's own fd on its file, or None when a whole fill is not
        worth it: the object is cached already, or the source does not ask for parallel reads
        (`parallelism` hint <= 1, e.g. a local store: its block reads are as fast as they get).
        The caller must `detach()` the fill and close the fd when done.
        """
        src = self._sources.get(key, source)
        workers = int(getattr(src, "parallelism", 1))
        dest = self.files.object_path(key)
        if workers <= 1 or os.path.exists(dest):
            return None
        with self._lock:
            fill = self.active.get(key)
            if fill is not None and not fill.failed:
                fd = fill.attach()
                if fd is not None:
                    return fill, fd
            lock = self.files.fill_locks.acquire(key, wait=False)
            if lock is not None:
                if os.path.exists(dest):  # published by another process meanwhile
                    lock.release()
                    return None
                try:
                    fill = WholeFill(
                        source=src,
                        size=size,
                        md5_hex=md5_hex,
                        dest=dest,
                        tmp_dir=self.files.tmp,
                        part_size=self.part_size,
                        workers=workers,
                        cached_part=lambda index: self.files.block_file(key, index),
                        on_done=functools.partial(self._done, key),
                        seal=lambda path, st, md5: self.files.seal(path, st, md5=md5),
                        part_ok=lambda path, fd, st: self.files.intact(path, fd, st, block=True),
                        part_lock=lambda index: self.files.fill_locks.hold(f"{key}.{index}"),
                        lock=lock,
                        digests=digests,
                    )
                except OSError as e:
                    lock.release()
                    notices.warn(log, f"start:{e.errno}", "cannot start a background fill: %s", e)
                    return None
                self.active[key] = fill
                fd = fill.attach()
        if lock is None:
            # Another process fills this key: wait for it (bounded by its progress), then the
            # reader finds the published object, or reads blocks if that fill failed.
            self._stats.add(fill_waits=1)
            with self.files.fill_locks.hold(key):
                pass
            return None
        assert fill is not None and fd is not None
        fill.start()
        self._stats.add(misses=1)
        return fill, fd

    def _done(self, key: str, fill: WholeFill) -> None:
        with self._lock:
            if self.active.get(key) is fill:
                del self.active[key]
        self._stats.add(bytes_fetched=fill.fetched_bytes)
        if fill.published or isinstance(fill.error, DigestMismatchError):
            # blocks are superseded by the whole object, or one of them may be the bad part
            self.files.drop_blocks(key)
        if fill.published:
            self._sources.forget(key)
            self._limit.added(fill.size, protect=str(fill.dest))

    def cancel_all(self) -> None:
        with self._lock:
            fills = list(self.active.values())
        for fill in fills:
            fill.cancel()
