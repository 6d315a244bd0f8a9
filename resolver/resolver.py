"""The resolver: one object that turns configuration into a registry plus the bytes behind it.

Front ends (the Python API, the CLI, the mount) hold a Resolver and nothing lower: it owns the
store, the registry and the blob cache, and knows how to get any manifest entry's bytes, stored
content or reference alike, through the cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from artifactfs.cache import BlobCache, BlobSource, SourceFactory, content_key, reference_key
from artifactfs.cache.blockdigests import BlockDigests
from artifactfs.cache.filllock import STALL_SECONDS
from artifactfs.cache.handles import ObjectHandle
from artifactfs.cache.references.fileaccess import Caller
from artifactfs.cache.source import Progress
from artifactfs.errors import ReferenceAccessError
from artifactfs.resolver import keys
from artifactfs.resolver.backends import Store, open_store
from artifactfs.resolver.manifest import ManifestEntry, b64_to_hex
from artifactfs.resolver.registry import Registry
from artifactfs.settings import Config, load_config

log = logging.getLogger(__name__)


SMALL = 8 << 20
"""Objects up to this size are fetched whole by one ranged GET (see copy_to)."""


class StoreObjectSource:
    """A BlobSource over one key of the registry store."""

    def __init__(self, store: Store, key: str, size: int | None = None) -> None:
        self.store = store
        self.key = key
        self.size = size
        """The size the manifest promises (None: unknown); the cache checks what arrives."""
        self.parallelism = store.read_parallelism
        """Hint for the cache: ranged GETs worth running at once on a sequential read."""

    def read_range(self, start: int, length: int) -> bytes:
        return self.store.get_range(self.key, start, length)

    def copy_to(self, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """The whole object into `fileobj`. A small one of known size is one ranged GET: a
        whole-object transfer (s3transfer) asks HEAD first, which doubles the requests of a
        cold epoch over small files (what arrives is verified by the cache either way)."""
        if self.size is not None and 0 < self.size <= SMALL and self.store.read_parallelism > 1:
            data = self.store.get_range(self.key, 0, self.size)
            fileobj.write(data)
            if progress is not None:
                progress(len(data))
            return len(data)
        return self.store.download_to(self.key, fileobj, progress)

    def range_into(self, start: int, length: int, fd: int) -> int:
        """Bytes [start, start+length) written at the same offsets of `fd` (no bytes object
        when the store can stream, as S3 does); returns how many were written."""
        into = getattr(self.store, "get_range_into", None)
        if into is not None:
            return into(self.key, start, length, fd)
        data = memoryview(self.read_range(start, length))
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], start + done)
        return done


@dataclass(frozen=True)
class EntryLocation:
    """Where an entry's bytes live in the cache, how to fetch them, and how to check them."""

    key: str
    size: int | None
    md5_hex: str | None
    source: SourceFactory
    digests: BlockDigests | None = None
    """Per-block SHA-256 recorded at commit (resolver/blockrecord.py), for ranged reads."""


class Resolver:
    """Registry + cache for one configuration."""

    def __init__(self, config: Config, *, ttl: float | None = None) -> None:
        self.config = config
        self.store: Store = open_store(config.registry, config)
        # Waiting for another process's fill that makes no progress must fit the deadline too
        # (issue 14): half of it, so taking the fill over still answers within one deadline.
        self.cache = BlobCache(
            config.cache_dir,
            config.cache_size,
            fill_stall_seconds=min(STALL_SECONDS, float(config.timeout) / 2),
            unverified_ranges=bool(config.unverified_ranges),
        )
        self.caller: Callable[[], Caller | None] = lambda: None
        """Who asks for the bytes being read (None: this process). The mount sets it to the
        caller of the FUSE request, so `file://` references are read with that user's rights."""
        self.registry = Registry(
            self.store,
            ttl=config.metadata_ttl if ttl is None else ttl,
            object_cache_dir=Path(config.cache_dir) / "metadata",
            gc_grace=config.gc_grace,
        )

    @classmethod
    def open(
        cls, config: Config | None = None, *, ttl: float | None = None, **overrides: Any
    ) -> Resolver:
        if config is None:
            config = load_config(**overrides)
        elif overrides:
            config = config.with_overrides(**overrides)
        return cls(config, ttl=ttl)

    def locate(self, entry: ManifestEntry) -> EntryLocation:
        """The cache key, expected digest and (lazy) source of an entry's bytes."""
        if entry.stored:  # in the registry by digest (an artifact:// ref too)
            md5_hex = b64_to_hex(entry.digest, entry.path)
            key = keys.blob_key(md5_hex)
            return EntryLocation(
                content_key(md5_hex),
                entry.size,
                md5_hex,
                lambda: StoreObjectSource(self.store, key, entry.size),
                self.registry.reader.block_digests.get(md5_hex),
            )
        # Imported on the first reference: the handlers pull in requests (~0.15 s), which a
        # version holding only stored content never needs. (No cycle: references import no resolver.)
        from artifactfs.cache.references import open_reference, verifiable_md5_hex
        from artifactfs.cache.references.file import check_readable, local_file_of

        ref, digest, extra = entry.ref or "", entry.digest, dict(entry.extra)
        local = local_file_of(ref)
        if local is not None:  # read as the user who asks, cached or not (fileaccess.py)
            caller = self.caller()
            try:
                check_readable(local, ref, caller)
            except ReferenceAccessError:
                if caller is not None:
                    log.warning("refused %s to uid %d: it may not read that file", ref, caller.uid)
                raise
        version_id = extra.get("versionID")

        def source() -> BlobSource:
            return open_reference(ref, digest, entry.size, extra, self.config)

        return EntryLocation(
            reference_key(ref, digest, version_id),
            entry.size,
            verifiable_md5_hex(ref, digest, extra),
            source,
        )

    def fetch(self, entry: ManifestEntry, progress: Progress | None = None) -> Path:
        """Make the whole entry local (in the cache) and return its cached path."""
        loc = self.locate(entry)
        return self.cache.ensure_file(loc.key, loc.size, loc.source, loc.md5_hex, progress)

    def fetch_to(
        self, entry: ManifestEntry, dest: BinaryIO, progress: Progress | None = None
    ) -> int:
        """Write the entry's verified bytes into `dest` without caching them (copied from the
        cache if it holds them); what download() does when the cache disk is full."""
        loc = self.locate(entry)
        return self.cache.fetch_to(loc.key, loc.size, loc.source, loc.md5_hex, dest, progress)

    def read(self, entry: ManifestEntry, offset: int, length: int) -> bytes:
        """Bytes of an entry by range, through the cache (big entries by block)."""
        loc = self.locate(entry)
        return self.cache.read(
            loc.key, loc.size, offset, length, loc.source, loc.md5_hex, digests=loc.digests
        )

    def open_handle(self, entry: ManifestEntry) -> ObjectHandle | None:
        """Held fds on an entry's cached bytes (None when its size is unknown)."""
        loc = self.locate(entry)
        if loc.size is None:
            return None
        return self.cache.open_handle(loc.key, loc.size, loc.source, loc.md5_hex, loc.digests)

    def open_cached(self, entry: ManifestEntry) -> int | None:
        """An fd on an entry's wholly cached, intact blob (the caller closes it), or None."""
        loc = self.locate(entry)
        if loc.size is None:
            return None
        return self.cache.open_verified(loc.key, loc.size, loc.md5_hex)

    def verified_object(self, entry: ManifestEntry) -> tuple[str, os.stat_result] | None:
        """The entry's wholly cached, intact object and its fstat at this check, or None."""
        loc = self.locate(entry)
        if loc.size is None:
            return None
        return self.cache.verified_object(loc.key, loc.size, loc.md5_hex)

    def touch_cached(self, path: str) -> None:
        """A cached object was read without the resolver (the mount's C fast path reads
        verified objects itself): mark it used, for eviction's LRU."""
        self.cache.touch(path)

    def close(self) -> None:
        self.cache.close()
        self.store.close()
