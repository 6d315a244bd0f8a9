"""Cache counters, shared by every thread of a process and exposed by the mount as JSON.

Counters are per process (each mount reports its own traffic); what is on disk is `info()`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields


@dataclass
class CacheStats:
    """A snapshot of what the cache did since this process opened it."""

    hits: int = 0
    """Reads or ensure_file calls answered from cached bytes (whole object or block)."""
    misses: int = 0
    """Reads or ensure_file calls that had to fetch from the source."""
    bytes_fetched: int = 0
    """Bytes read from sources (backends, references), including read-ahead."""
    bytes_served: int = 0
    """Bytes returned by `read`."""
    blocks_fetched: int = 0
    blocks_prefetched: int = 0
    """Blocks filled by background read-ahead (a subset of blocks_fetched)."""
    corrupt_discarded: int = 0
    """Cached files thrown away because their size or hash was wrong, or because they changed
    after they were verified (their seal, cache/seals.py). Files dropped only for having no
    seal (left by an older version) are not counted."""
    rehashed: int = 0
    """Cached files re-hashed because their seal did not match (or was missing)."""
    fill_waits: int = 0
    """Misses answered by waiting for another process's fill of the same key (or block)."""
    direct_reads: int = 0
    """Reads served straight from the source because the cache could not store (disk full)."""
    evicted_objects: int = 0
    evicted_bytes: int = 0
    blocks_rejected: int = 0
    """Blocks (or background-fill parts) fetched that did not match the entry's block digests
    (blockdigests.py): never stored, never served."""
    whole_first: int = 0
    """Range reads of big entries without block digests that had the whole object fetched and
    verified before serving a byte (blockdigests.ReadCheck)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class StatsRecorder:
    """Thread-safe counters; `snapshot()` gives a consistent copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = CacheStats()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self._stats, name, getattr(self._stats, name) + value)

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**{f.name: getattr(self._stats, f.name) for f in fields(CacheStats)})
