"""Filling the shared cache ahead of reading: many entries fetched at once.

WHY: a data loader's cold epoch over small files from S3 otherwise waits one GET latency per
file, one file at a time per worker. Fetching the entries in parallel beforehand (or alongside,
as the mount's read-ahead does) turns that into a few dozen GETs in flight, bounded by
bandwidth instead of latency. `artifactfs prefetch` and the mount (fusefs/readahead.py) both
come here.

Resumable by construction: every fill is verified and renamed into place whole (cache/), so an
interrupted run leaves only complete entries, and the next run skips what is cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

JOBS = 16
"""Fetches in flight: enough to hide a loopback/LAN GET latency behind transfers of small
files (measured in bench/bench_loader.py), few enough not to flood a shared server."""


@dataclass
class PrefetchResult:
    files: int = 0
    """Entries asked for."""
    cached: int = 0
    """Already in the cache (nothing fetched)."""
    fetched: int = 0
    bytes_fetched: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path, why) of entries that could not be fetched; a re-run tries them again."""


def is_cached(resolver: Resolver, entry: ManifestEntry) -> bool:
    """True when the entry's whole bytes are in the cache (checked by size, cheaply)."""
    loc = resolver.locate(entry)
    return resolver.cache.cached_path(loc.key, loc.size) is not None


def prefetch_entries(
    resolver: Resolver,
    entries: Iterable[ManifestEntry],
    *,
    jobs: int = JOBS,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> PrefetchResult:
    """Fetch every entry not yet cached, `jobs` at a time. Failures are collected, not raised
    (the others still land); `progress(n)` is told bytes as entries complete (cached ones
    too, so a bar reaches its total); `stop` abandons what has not started."""
    result = PrefetchResult()
    todo: list[ManifestEntry] = []
    for entry in entries:
        result.files += 1
        if is_cached(resolver, entry):
            result.cached += 1
            if progress is not None:
                progress(entry.size or 0)
        else:
            todo.append(entry)
    lock = threading.Lock()

    def one(entry: ManifestEntry) -> None:
        if stop is not None and stop.is_set():
            return
        try:
            resolver.fetch(entry)
        except (ArtifactFSError, OSError) as e:
            log.warning("prefetch of %s failed: %s", entry.path, e)
            with lock:
                result.failed.append((entry.path, str(e)))
            return
        with lock:
            result.fetched += 1
            result.bytes_fetched += entry.size or 0
        if progress is not None:
            progress(entry.size or 0)

    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
            list(pool.map(one, todo))
    return result


def under_prefix(entries: Iterable[ManifestEntry], prefix: str) -> list[ManifestEntry]:
    """Entries at `prefix` (a file) or below it (a directory); all for an empty prefix."""
    prefix = prefix.strip("/")
    if not prefix:
        return list(entries)
    below = prefix + "/"
    return [e for e in entries if e.path == prefix or e.path.startswith(below)]
