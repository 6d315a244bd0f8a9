"""The cache's size limit: this process's running idea of how full the cache is, and eviction
when a fill pushes it past the limit.

Apart from the blob cache because it is the one piece of shared, slowly changing state that
every fill (whole objects, blocks, background fills) reports to, and apart from eviction.py
because that module is the mechanism (scan, LRU order, prune under an flock) while this is the
policy: keep an approximate total (other processes fill too, so it is rescanned every
`RESCAN_SECONDS`), and when it exceeds `max_bytes` prune down to `low_water` of it without
waiting for another process that is already pruning.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import artifactfs.cache.eviction as eviction
from artifactfs.cache.eviction import CacheInfo
from artifactfs.cache.layout import CacheFiles
from artifactfs.cache.stats import StatsRecorder

RESCAN_SECONDS = 60.0
"""How stale this process's idea of the cache's total size may get (other processes fill too)."""


@dataclass(frozen=True)
class PruneResult:
    removed_objects: int
    removed_bytes: int
    remaining_bytes: int


class SizeLimit:
    """Accounting of one cache directory against `max_bytes` (thread-safe)."""

    def __init__(
        self, files: CacheFiles, max_bytes: int, low_water: float, stats: StatsRecorder
    ) -> None:
        self.files = files
        self.max_bytes = max_bytes
        self.low_water = low_water
        self._stats = stats
        self._lock = threading.Lock()
        self._approx_bytes: int | None = None
        self._scanned_at = 0.0

    def added(self, nbytes: int, protect: str | None = None) -> None:
        """Record a fill of `nbytes` and evict when the cache exceeds the limit; `protect` is
        the file just filled, which its caller has not opened yet."""
        with self._lock:
            now = time.monotonic()
            if self._approx_bytes is None or now - self._scanned_at > RESCAN_SECONDS:
                self._approx_bytes = self.info().bytes
                self._scanned_at = now
            else:
                self._approx_bytes += nbytes
            if self._approx_bytes <= self.max_bytes:
                return
            target = int(self.max_bytes * self.low_water)
            self.files.flush_touches()  # this process's recent uses count in the LRU order
            removed, removed_bytes, remaining = eviction.prune(
                self.files.root,
                self.files.objects,
                self.files.blocks,
                self.files.tmp,
                target,
                blocking=False,
                protect=protect,
                fill_locks=self.files.fill_locks,
            )
            if remaining >= 0:
                self._approx_bytes = remaining
                self._scanned_at = now
            self._stats.add(evicted_objects=removed, evicted_bytes=removed_bytes)

    def info(self) -> CacheInfo:
        """What is on disk now (all processes): bytes, whole objects, blocks, and the limit."""
        files = eviction.scan(self.files.objects, self.files.blocks)
        return eviction.summarize(files, self.files.root, self.max_bytes)

    def prune(self, target_bytes: int | None = None) -> PruneResult:
        """Evict least-recently-used files until at most `target_bytes` (default: the limit)."""
        target = self.max_bytes if target_bytes is None else target_bytes
        self.files.flush_touches()
        removed, removed_bytes, remaining = eviction.prune(
            self.files.root,
            self.files.objects,
            self.files.blocks,
            self.files.tmp,
            target,
            blocking=True,
            fill_locks=self.files.fill_locks,
        )
        with self._lock:
            self._approx_bytes = remaining
            self._scanned_at = time.monotonic()
        self._stats.add(evicted_objects=removed, evicted_bytes=removed_bytes)
        return PruneResult(removed, removed_bytes, remaining)
