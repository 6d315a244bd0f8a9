"""The cache directory's files: where each key's whole object and blocks live, marking a file
used, and discarding a corrupt one.

Apart from the blob cache because every part of it (whole objects, blocks, background fills,
handles) names, touches and discards files the same way, and none of them should re-derive the
layout. Keys are `md5/<hex>` for stored content and `ref/<sha256>` for references:

    objects/<kind>/<2>/<rest>          whole objects, verified (md5 when known, size) before rename
    blocks/<kind>/<2>/<rest>/<index>   fixed-size blocks of big objects read by range
    tmp/                               private temporary files of fills under way

A file's mtime is its last use (`touch`), which makes eviction least-recently-used across
processes without any shared index (see eviction.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from artifactfs.cache.eviction import Toucher
from artifactfs.cache.stats import StatsRecorder
from artifactfs.errors import CacheError

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[a-z0-9]+/[A-Za-z0-9_-]{3,}$")


def content_key(md5_hex: str) -> str:
    """Cache key of stored content with this MD5."""
    return f"md5/{md5_hex}"


def reference_key(ref: str, digest: str, version_id: str | None = None) -> str:
    """Cache key of a reference: the URL pinned by the digest (and version) it was logged with."""
    h = hashlib.sha256(f"{ref}\n{digest}\n{version_id or ''}".encode()).hexdigest()
    return f"ref/{h}"


class CacheFiles:
    """The files under one cache root (created if missing; CacheError if unusable)."""

    def __init__(self, root: Path, stats: StatsRecorder) -> None:
        self.root = root
        self.objects = root / "objects"
        self.blocks = root / "blocks"
        self.tmp = root / "tmp"
        try:
            for d in (self.objects, self.blocks, self.tmp):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot use cache directory {root}: {e}") from e
        self._stats = stats
        self._toucher = Toucher()
        # A plain dict (single operations are atomic under the GIL; cachetools caches are not
        # thread-safe), emptied when it grows past a bound.
        self._block_dirs: dict[str, str] = {}
        self._objects_str = str(self.objects)

    @staticmethod
    def _split(key: str) -> tuple[str, str]:
        if not _KEY.match(key):
            raise CacheError(f"invalid cache key {key!r}")
        kind, name = key.split("/", 1)
        return kind, name

    def object_path(self, key: str) -> Path:
        """Where the whole object of `key` lives (whether or not it is cached)."""
        kind, name = self._split(key)
        return self.objects / kind / name[:2] / name[2:]

    def object_file(self, key: str) -> str:
        """object_path as a string, built without pathlib (hot read path: a mount opens one
        per small file it reads; pathlib cost ~50 µs of ~170 per file, profiled)."""
        kind, name = self._split(key)
        return f"{self._objects_str}/{kind}/{name[:2]}/{name[2:]}"

    def block_dir(self, key: str) -> Path:
        kind, name = self._split(key)
        return self.blocks / kind / name[:2] / name[2:]

    def block_file(self, key: str, index: int) -> str:
        """The path of block `index` of `key`, as a string, with the per-key directory memoized
        (hot read path)."""
        d = self._block_dirs.get(key)
        if d is None:
            if len(self._block_dirs) > 4096:
                self._block_dirs.clear()
            d = self._block_dirs[key] = str(self.block_dir(key))
        return f"{d}/{index:08d}"

    def touch(self, path: str) -> None:
        """Mark a cached file as just used (its LRU position)."""
        self._toucher.touch(path)

    def discard(self, path: Path | str, why: str) -> None:
        """Remove a cached file that failed a check: it is never served again."""
        log.warning("discarding corrupt cache file %s: it %s", path, why)
        self._stats.add(corrupt_discarded=1)
        self._toucher.forget(str(path))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
