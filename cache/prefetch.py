"""Sequential read-ahead for block-cached objects.

A reader streaming a big entry (cp, a data loader) reads block after block; fetching the next
blocks in the background while it consumes the current one turns per-request latency into
parallel transfers, so throughput approaches the backend's bandwidth. Random readers (mmap,
seek-heavy formats) never trigger it, so they fetch only what they touch.

The window starts at one block and doubles on every further sequential read, up to
`max_blocks`; a non-sequential read resets it. The thread pool is shared and bounded, and a
block already present or being fetched is not queued again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cachetools import LRUCache

log = logging.getLogger(__name__)


@dataclass
class _Stream:
    next_offset: int = 0
    window: int = 0
    scheduled: int = -1
    """Highest block index already handed to the prefetcher for this stream."""


class SequentialDetector:
    """Per-key access pattern: how many blocks ahead to prefetch after a read."""

    def __init__(self, max_blocks: int, max_keys: int = 4096) -> None:
        self.max_blocks = max_blocks
        self._streams: LRUCache[str, _Stream] = LRUCache(maxsize=max_keys)
        self._lock = threading.Lock()

    def observe(self, key: str, offset: int, length: int, last_block: int, n_blocks: int) -> range:
        """Record a read that ended in block `last_block`; return the blocks to prefetch now.

        Blocks already scheduled for this stream are not returned again, so a reader doing many
        small reads inside one block costs no extra work per read.
        """
        with self._lock:
            s = self._streams.get(key)
            if s is None:
                s = self._streams[key] = _Stream()
                sequential = offset == 0
            else:
                # The kernel may issue reads slightly out of order (parallel readahead), so a
                # read that starts within one request of the expected offset still counts.
                sequential = abs(offset - s.next_offset) <= max(length, 256 << 10)
            s.next_offset = offset + length
            if not sequential:
                s.window, s.scheduled = 0, -1
                return range(0)
            s.window = min(self.max_blocks, max(1, s.window * 2))
            end = min(n_blocks - 1, last_block + s.window)
            start = max(last_block + 1, s.scheduled + 1)
            s.scheduled = max(s.scheduled, end)
            return range(start, end + 1)

    def rewind(self, key: str, block: int) -> None:
        """Forget that blocks from `block` on were scheduled (the prefetcher was full)."""
        with self._lock:
            s = self._streams.get(key)
            if s is not None and s.scheduled >= block:
                s.scheduled = block - 1


class Prefetcher:
    """A bounded pool of background block fills, deduplicated by (key, block)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def submit(self, key: str, index: int, fill: Callable[[], object]) -> bool:
        """Queue `fill` for block `index` of `key` unless it is already queued.

        Returns False only when nothing was queued because the pool is disabled or full.
        """
        if self.workers <= 0:
            return False
        with self._lock:
            if (key, index) in self._pending:
                return True
            # Never queue more than a few windows' worth: a reader that stops must not leave
            # minutes of downloads behind it.
            if len(self._pending) >= self.workers * 8:
                return False
            self._pending.add((key, index))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="afs-readahead")
            pool = self._pool

        def run() -> None:
            try:
                fill()
            except Exception as e:  # a failed read-ahead is retried by the foreground read
                log.debug("read-ahead of %s block %d failed: %s", key, index, e)
            finally:
                with self._lock:
                    self._pending.discard((key, index))

        pool.submit(run)
        return True

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
