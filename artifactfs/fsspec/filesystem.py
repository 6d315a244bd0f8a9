"""`artifact://` for fsspec: artifacts read by pandas, pyarrow, HF datasets, Dask... without a mount.

WHY: not every place can mount (containers without /dev/fuse, hosted notebooks, macOS), and the
Python data stack reads through fsspec. This is a second front end beside the mount, reading
through the same Resolver, so the bytes come from the same shared blob cache: a blob the mount
or a download already fetched is never fetched again, and what is read here serves them too.

Paths (`artifact://` optional): `entity/project/name:alias/path/in/artifact`, with defaults for
the entity and project (artifactfs.fsspec.paths). Read-only. Listings (`ls`, `info`, `find`, `glob`) come from the version's manifest index (the
mount's, resolver.version_index), never a per-file call; an alias is resolved through the
registry's metadata TTL, and an open file is pinned to the version it was opened at.
Options are the normal configuration (artifactfs.settings.load_config); every configuration key
is also a storage option: `fsspec.open("artifact://...", registry="s3://bucket/prefix")`.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import logging
import os
import shutil
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import datetime
from typing import Any

from fsspec.spec import AbstractFileSystem

from artifactfs.errors import (
    ArtifactNotFoundError,
    ConfigError,
    ObjectNotFoundError,
)
from artifactfs.fsspec.open_file import ArtifactFile
from artifactfs.fsspec.paths import Location, ReadOnlyError, not_found, parse
from artifactfs.fsutil import atomic_path
from artifactfs.resolver.download import FETCH_THREADS, file_mode
from artifactfs.resolver.manifest import ManifestEntry, b64_to_hex
from artifactfs.resolver.manifest_index import ManifestIndex
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.resolver import Resolver
from artifactfs.resolver.version_index import index_dir, open_version_index
from artifactfs.settings import Config, load_config

PROTOCOL = "artifact"
OPEN_INDEXES = 64
CONFIG_KEYS = frozenset(f.name for f in fields(Config))
FSSPEC_OPTIONS = frozenset({"skip_instance_cache", "use_listings_cache", "max_workers"})

log = logging.getLogger(__name__)


# -- shared per process: one Resolver per configuration, one index per manifest -------------------
_lock = threading.Lock()
_resolvers: dict[tuple[int, str], Resolver] = {}
_indexes: OrderedDict[str, ManifestIndex] = OrderedDict()


def _shared_resolver(config: Config) -> Resolver:
    """fsspec makes one instance per thread; those of one configuration share a Resolver (and
    its cache's threads). Keyed by pid too: after a fork (DataLoader workers) a child opens its
    own rather than use its parent's connections and dead threads."""
    key = (os.getpid(), repr(config))
    with _lock:
        resolver = _resolvers.get(key)
        if resolver is None:
            resolver = _resolvers[key] = Resolver.open(config)
        return resolver


def reset() -> None:
    """Close every shared Resolver and index of this process and forget fsspec's instances
    (tests, or a process that changed its configuration)."""
    ArtifactFileSystem.clear_instance_cache()
    with _lock:
        resolvers = [r for (pid, _), r in _resolvers.items() if pid == os.getpid()]
        _resolvers.clear()
        indexes = list(_indexes.values())
        _indexes.clear()
    for resolver in resolvers:
        resolver.close()
    for index in indexes:
        index.close()


def _version_index(resolver: Resolver, record: VersionRecord) -> ManifestIndex:
    resolver.registry.reader.block_digests.load(record)  # once per record: ranged reads check
    key = record.manifest_key
    with _lock:
        index = _indexes.get(key)
        if index is not None:
            _indexes.move_to_end(key)
            return index
    index, _ = open_version_index(resolver.registry, record, index_dir(resolver.config.cache_dir))
    with _lock:
        if key in _indexes:  # another thread won: keep one mapping
            index.close()
            return _indexes[key]
        _indexes[key] = index
        while len(_indexes) > OPEN_INDEXES:
            _indexes.popitem(last=False)  # dropped, not closed: a reader may hold a slice
    return index


def _mtime(record: VersionRecord) -> float:
    try:
        return datetime.fromisoformat(record.created_at).timestamp()
    except (TypeError, ValueError):
        return 0.0


class ArtifactFileSystem(AbstractFileSystem):
    """Read-only fsspec file system over an artifactfs registry (see the module docstring)."""

    protocol = PROTOCOL
    root_marker = ""

    def __init__(self, max_workers: int = FETCH_THREADS, **storage_options: Any) -> None:
        """`storage_options` are configuration keys (registry, cache_dir, entity, project,
        metadata_ttl, s3_endpoint_url, ...), overriding the configuration file and environment."""
        overrides = {k: v for k, v in storage_options.items() if k in CONFIG_KEYS}
        foreign = sorted(set(storage_options) - CONFIG_KEYS - FSSPEC_OPTIONS)
        for key in foreign:
            # The data stack adds options of its own (HF `datasets` passes `hf` once a pattern
            # matches 16+ files): ignored. A near-miss of a configuration key is a typo, which
            # silently reading the default registry would hide.
            close = difflib.get_close_matches(key, CONFIG_KEYS, n=1, cutoff=0.8)
            if close:
                raise ConfigError(
                    f"unknown artifact:// storage option {key!r}; did you mean {close[0]!r}?"
                )
        if foreign:
            log.debug("ignoring artifact:// storage options %s (not ours)", foreign)
        super().__init__(max_workers=max_workers, **storage_options)
        self.overrides = overrides
        self.max_workers = max_workers
        self.config = load_config(**overrides)  # errors surface here, not on first read

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return str(super()._strip_protocol(path)).strip("/")

    @property
    def resolver(self) -> Resolver:
        return _shared_resolver(self.config)

    # -- resolving ------------------------------------------------------------------------------
    def _locate(self, path: str) -> Location:
        return parse(self._strip_protocol(path), self.config.entity, self.config.project)

    def _record(self, loc: Location) -> VersionRecord:
        assert loc.ref is not None
        try:
            return self.resolver.registry.resolve(loc.ref)
        except (ArtifactNotFoundError, ObjectNotFoundError) as e:
            raise not_found(loc.path, f"artifact://{loc.path}: {e}") from e

    def _version(self, loc: Location) -> tuple[VersionRecord, ManifestIndex]:
        record = self._record(loc)
        try:
            return record, _version_index(self.resolver, record)
        except ObjectNotFoundError as e:
            raise not_found(loc.path, f"manifest of {record.full_name} is missing: {e}") from e

    def _entry(self, path: str) -> tuple[VersionRecord, ManifestEntry]:
        loc = self._locate(path)
        if loc.ref is None or not loc.inner:
            raise IsADirectoryError(errno.EISDIR, f"artifact://{loc.path} is a directory")
        record, index = self._version(loc)
        i = index.find(loc.inner)
        if i < 0:
            if index.is_dir(loc.inner):
                raise IsADirectoryError(errno.EISDIR, f"artifact://{loc.path} is a directory")
            raise not_found(loc.path, f"no file {loc.inner!r} in {record.full_name}")
        return record, index.entry(i)

    # -- listing --------------------------------------------------------------------------------
    @staticmethod
    def _dir(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "size": 0, "type": "directory", **extra}

    @staticmethod
    def _file(name: str, record: VersionRecord, entry: ManifestEntry) -> dict[str, Any]:
        md5 = b64_to_hex(entry.digest) if entry.stored else None
        return {
            "name": name,
            "size": entry.size,
            "type": "file",
            "digest": entry.digest,
            "md5": md5,
            "ref": entry.ref,
            "version": f"v{record.version}",
            "artifact": record.full_name,
            "mtime": _mtime(record),
            "ETag": md5 or entry.digest,
        }

    def _namespace_children(self, loc: Location) -> list[dict[str, Any]]:
        reg = self.resolver.registry
        ns = loc.namespace
        base = "/".join(ns)
        if not ns:
            return [self._dir(e) for e in reg.entities()]
        if ns[0] not in reg.entities():
            raise not_found(loc.path, f"no such entity {ns[0]!r}")
        if len(ns) == 1:
            return [self._dir(f"{base}/{p}") for p in reg.projects(ns[0])]
        if ns[1] not in reg.projects(ns[0]):
            raise not_found(loc.path, f"no such project {base!r}")
        out = []
        for name in reg.collections(*ns):
            try:
                numbers = reg.version_numbers(ns[0], ns[1], name)
                aliases = reg.aliases(ns[0], ns[1], name)
            except ArtifactNotFoundError:
                continue
            out += [self._dir(f"{base}/{name}:v{n}") for n in numbers]
            out += [
                self._dir(f"{base}/{name}:{a}", alias_of=f"{name}:v{n}")
                for a, n in sorted(aliases.items())
            ]
        return out

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        loc = self._locate(path)
        if loc.ref is None:
            out = self._namespace_children(loc)
        else:
            record, index = self._version(loc)
            if loc.inner and index.find(loc.inner) >= 0:
                out = [self._file(loc.path, record, index.entry(index.find(loc.inner)))]
            elif not index.is_dir(loc.inner):
                raise not_found(
                    loc.path, f"no file or directory {loc.inner!r} in {record.full_name}"
                )
            else:
                base = loc.path.rstrip("/")
                out = [
                    self._dir(f"{base}/{c.name}")
                    if c.is_dir
                    else self._file(f"{base}/{c.name}", record, index.entry(c.index))
                    for c in index.children(loc.inner)
                ]
        return out if detail else [o["name"] for o in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        loc = self._locate(path)
        if loc.ref is None:
            if loc.namespace:  # the parent's listing says whether it exists
                parent = Location(loc.path, loc.namespace[:-1])
                if not any(c["name"] == loc.path for c in self._namespace_children(parent)):
                    raise not_found(loc.path)
            return self._dir(loc.path)
        record, index = self._version(loc)
        if not loc.inner:
            return self._dir(
                loc.path, size=record.size, version=f"v{record.version}", digest=record.digest
            )
        i = index.find(loc.inner)
        if i >= 0:
            return self._file(loc.path, record, index.entry(i))
        if index.is_dir(loc.inner):
            return self._dir(loc.path)
        raise not_found(loc.path, f"no file {loc.inner!r} in {record.full_name}")

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Inside a version and without maxdepth: one pass over the sorted run of entries below
        `path`, instead of a listing per directory."""
        loc = self._locate(path)
        if loc.ref is None or maxdepth is not None:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        record, index = self._version(loc)
        base = loc.path.rstrip("/")
        i = index.find(loc.inner) if loc.inner else -1
        if i >= 0:
            found = {base: self._file(base, record, index.entry(i))}
            return found if detail else [base]
        if not index.is_dir(loc.inner):
            return {} if detail else []
        skip = len(loc.inner) + 1 if loc.inner else 0
        out: dict[str, dict[str, Any]] = {}
        if withdirs:
            out[base] = self._dir(base)
        for j in index.under(loc.inner):
            rel = index.path(j)[skip:]
            if withdirs:
                cut = rel.rfind("/")
                while cut > 0 and f"{base}/{rel[:cut]}" not in out:
                    out[f"{base}/{rel[:cut]}"] = self._dir(f"{base}/{rel[:cut]}")
                    cut = rel.rfind("/", 0, cut)
            out[f"{base}/{rel}"] = (
                self._file(f"{base}/{rel}", record, index.entry(j)) if detail else {}
            )
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    # -- reading --------------------------------------------------------------------------------
    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> ArtifactFile:
        if mode != "rb":
            raise ReadOnlyError(self._strip_protocol(path))
        _, entry = self._entry(path)
        return ArtifactFile(
            self,
            self._strip_protocol(path),
            entry,
            block_size=block_size,
            cache_type=kwargs.pop("cache_type", "none"),
            cache_options=cache_options,
            **kwargs,
        )

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        _, entry = self._entry(path)
        size = entry.size if entry.size is not None else self._local_size(entry)
        lo = 0 if start is None else (max(size + start, 0) if start < 0 else start)
        hi = size if end is None else (max(size + end, 0) if end < 0 else min(end, size))
        return self.resolver.read(entry, lo, hi - lo) if hi > lo else b""

    def _local_size(self, entry: ManifestEntry) -> int:
        """The size of an entry whose manifest does not say (some references): fetch it whole."""
        return self.resolver.fetch(entry).stat().st_size

    def get_file(self, rpath: str, lpath: str, callback: Any = None, **kwargs: Any) -> None:
        """One file, through the cache, written atomically (copied, never linked: the cached
        blob is shared with every process and must not be edited through the copy)."""
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        _, entry = self._entry(rpath)
        cached = self.resolver.fetch(entry)
        with atomic_path(lpath, mode=file_mode(entry)) as tmp:  # never wider than a local ref
            shutil.copyfile(cached, tmp)
        if callback is not None:
            callback.relative_update(entry.size or 0)

    def get(self, rpath: Any, lpath: Any, recursive: bool = False, **kwargs: Any) -> None:
        """fsspec's `get`, with every file fetched into the cache first, `max_workers` at a time
        (the base class copies one file after the other)."""
        maxdepth = kwargs.get("maxdepth")
        files = [
            p
            for p in self.expand_path(rpath, recursive=recursive, maxdepth=maxdepth)
            if self.isfile(p)
        ]
        entries = [self._entry(p)[1] for p in files]
        if len(entries) > 1:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(entries))) as pool:
                list(pool.map(self.resolver.fetch, entries))
        super().get(rpath, lpath, recursive=recursive, **kwargs)

    def ukey(self, path: str) -> str:
        """The cache key of the bytes: equal for equal content, whatever the path or version."""
        _, entry = self._entry(path)
        return self.resolver.locate(entry).key

    def checksum(self, path: str) -> int:
        """The entry's MD5 (stored content) as an int; for a reference, a hash of its cache
        key (URI, recorded digest and version id)."""
        _, entry = self._entry(path)
        md5 = self.resolver.locate(entry).md5_hex
        return int(md5 or hashlib.md5(self.ukey(path).encode()).hexdigest(), 16)

    def created(self, path: str) -> datetime:
        return datetime.fromtimestamp(self.info(path).get("mtime") or 0.0)

    modified = created

    # -- read-only ------------------------------------------------------------------------------
    def _refuse(self, path: Any, *args: Any, **kwargs: Any) -> None:
        raise ReadOnlyError(self._strip_protocol(path if isinstance(path, str) else str(path)))

    mkdir = makedirs = rmdir = _rm = rm_file = rm = touch = _refuse
    cp_file = mv = pipe_file = put_file = put = _refuse
