"""The seam below the cache: where an object's bytes come from on a miss.

The cache never imports the registry: the resolver hands it a `BlobSource` factory per object
(a store key, or a reference URL through a reference handler), so a cache hit needs no backend
at all (offline reads) and the data flow stays one-way: resolver -> cache -> backend.
`SourceMemo` keeps the sources the cache built, per key, for the next misses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import BinaryIO, Protocol

from cachetools import TTLCache

Progress = Callable[[int], None]


class BlobSource(Protocol):
    """One remote object, readable whole or by range."""

    def read_range(self, start: int, length: int) -> bytes:
        """Up to `length` bytes from `start` (fewer only at the end)."""
        ...

    def copy_to(self, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """Stream the whole object into `fileobj`; return the number of bytes written."""
        ...


# Optional, used when present (see cache/wholefill.py):
#   parallelism: int  -- ranged reads worth running at once on a sequential read (default 1)
#   range_into(start, length, fd) -> int  -- write a range at the same offsets of a file

SourceFactory = Callable[[], BlobSource]
"""Called only on a miss, so hits never touch (or even construct a client for) the backend."""


class SourceMemo:
    """The sources built on misses, reused for a key's next misses for a minute, so a stream of
    block misses does not re-open (re-HEAD) a reference for every block."""

    def __init__(self) -> None:
        self._sources: TTLCache[str, BlobSource] = TTLCache(maxsize=256, ttl=60.0)
        self._lock = threading.Lock()

    def get(self, key: str, factory: SourceFactory) -> BlobSource:
        """The memoized source of `key`, built with `factory` if there is none."""
        with self._lock:
            src = self._sources.get(key)
        if src is None:
            src = factory()
            with self._lock:
                self._sources[key] = src
        return src

    def forget(self, key: str) -> None:
        """Drop `key`'s source (its object is whole in the cache now)."""
        with self._lock:
            self._sources.pop(key, None)
