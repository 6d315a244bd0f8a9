"""Counters of one mount process, served as JSON in `MOUNT/.artifactfs/stats.json`."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class MountCounters:
    started_at: float = field(default_factory=time.time)
    reads: int = 0
    bytes_read: int = 0
    read_errors: int = 0
    listings: int = 0
    lookups: int = 0
    backend_errors: int = 0
    stale_listings_served: int = 0
    indexes_built: int = 0
    indexes_fetched: int = 0
    readahead_windows: int = 0
    readahead_files: int = 0
    """Sibling files scheduled by read-ahead (fusefs/readahead.py)."""
    readahead_fetched: int = 0
    readahead_bytes: int = 0
    upcalls: dict[str, int] = field(default_factory=dict)
    """Requests that reached Python, by callback (those libfuse answers in C are not here)."""
    invalid_manifests: int = 0
    passthrough_opens: int = 0
    """Version files opened with passthrough (--passthrough; the kernel reads their blob)."""
    passthrough_misses: int = 0
    """Version files opened in that mode but served through the mount (not wholly cached)."""


class MountStats:
    """Thread-safe counters (every FUSE worker thread updates them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c = MountCounters()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self._c, name, getattr(self._c, name) + value)

    def upcall(self, name: str) -> None:
        with self._lock:
            calls = self._c.upcalls
            calls[name] = calls.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._c)
