"""Sibling read-ahead: when a loader starts reading a directory of small files that are not
cached, fetch the rest of that directory in parallel, in the background, within a budget.

WHY: a data loader's cold epoch over small files from a remote store otherwise waits one GET
latency per file, per worker (DESIGN §7: at most a few FUSE requests are in flight). Loaders
read whole directories, in listing order or shuffled, so once two files of one directory
missed the cache, the other files of that directory are very likely next.

Rules (docs/SEMANTICS.md, "Reading"):
* Only stores that ask for parallel reads (`read_parallelism > 1`: S3, not the local
  registry) and only entries below the cache's block threshold (big entries have their own
  read-ahead, cache/prefetch.py).
* Triggered by the second miss in one directory of one version; a window of at most `files`
  files and `max_bytes` bytes, in listing order from the file that missed (wrapping round).
  A later miss outside every window of that directory starts a new window from there.
* Fetched by `jobs` background threads through resolver/prefetch.py (verified fills, the same
  ones a read would make); a reader that asks for a file being fetched waits for that fill.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from artifactfs.resolver.prefetch import prefetch_entries

if TYPE_CHECKING:
    from artifactfs.fusefs.catalog import VersionView
    from artifactfs.fusefs.stats import MountStats
    from artifactfs.resolver.manifest import ManifestEntry
    from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

FILES = 1024
MAX_BYTES = 256 << 20
JOBS = 16
TRIGGER_MISSES = 2


class SiblingReadahead:
    """Per-mount read-ahead of sibling small files (thread-safe; a no-op when disabled)."""

    def __init__(
        self,
        resolver: Resolver,
        stats: MountStats,
        *,
        files: int = FILES,
        max_bytes: int = MAX_BYTES,
        jobs: int = JOBS,
    ) -> None:
        self.resolver = resolver
        self.stats = stats
        self.files = files
        self.max_bytes = max_bytes
        self.jobs = jobs
        self.enabled = files > 0 and max_bytes > 0 and resolver.store.read_parallelism > 1
        self._lock = threading.Lock()
        self._dirs: OrderedDict[tuple[str, str], set[int]] = OrderedDict()
        """(version's manifest, directory) -> entry numbers already in a window"""
        self._misses: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()

    def missed(self, view: VersionView, i: int) -> None:
        """Entry `i` of `view` is about to be fetched for a read (it was not cached)."""
        if not self.enabled or self._stop.is_set():
            return
        size = view.index.size(i)
        if size is None or size >= self.resolver.cache.block_threshold:
            return
        key = (view.record.manifest_key, view.index.path(i).rpartition("/")[0])
        with self._lock:
            windows = self._dirs.get(key)
            if windows is not None and i in windows:
                return  # scheduled already (its fill is under way or done)
            count = self._misses.pop(key, 0) + 1
            self._misses[key] = count
            while len(self._misses) > 4096:
                self._misses.popitem(last=False)
            if count < TRIGGER_MISSES:
                return
            if windows is None:
                windows = self._dirs[key] = set()
                while len(self._dirs) > 1024:
                    self._dirs.popitem(last=False)
            windows.add(i)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="afs-readahead")
            pool = self._pool
        pool.submit(self._window, view, i, key[1], windows)

    def _window(self, view: VersionView, start: int, directory: str, taken: set[int]) -> None:
        """Pick the window's entries (in a pool thread: a big directory is a long scan)."""
        try:
            entries = self._pick(view, start, directory, taken)
        except Exception:
            log.exception("read-ahead of %s failed", directory or "/")
            return
        if not entries:
            return
        self.stats.add(readahead_windows=1, readahead_files=len(entries))
        log.debug("read-ahead: %d files after %s", len(entries), view.index.path(start))
        assert self._pool is not None
        for entry in entries:  # one task per file: the pool's threads fetch them in parallel
            self._pool.submit(self._fetch, entry)

    def _fetch(self, entry: ManifestEntry) -> None:
        if self._stop.is_set():
            return
        result = prefetch_entries(self.resolver, [entry], jobs=1, stop=self._stop)
        self.stats.add(readahead_fetched=result.fetched, readahead_bytes=result.bytes_fetched)

    def _pick(
        self, view: VersionView, start: int, directory: str, taken: set[int]
    ) -> list[ManifestEntry]:
        index = view.index
        prefix = f"{directory}/" if directory else ""
        threshold = self.resolver.cache.block_threshold
        lo = start
        while lo > 0 and _sibling(index.path(lo - 1), prefix):
            lo -= 1
        hi = start + 1
        while hi < len(index) and _sibling(index.path(hi), prefix):
            hi += 1
        order = list(range(start + 1, hi)) + list(range(lo, start))
        out: list[ManifestEntry] = []
        budget = self.max_bytes
        for j in order:
            if len(out) >= self.files:
                break
            size = index.size(j)
            with self._lock:
                if j in taken or size is None or size >= threshold or size > budget:
                    continue
                taken.add(j)
            out.append(index.entry(j))
            budget -= size
        return out

    def close(self) -> None:
        """Stop: fetches not started are dropped, running ones finish."""
        self._stop.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _sibling(path: str, prefix: str) -> bool:
    """A file directly inside the directory of `prefix` (not below a subdirectory)."""
    return path.startswith(prefix) and "/" not in path[len(prefix) :]
