"""The mount's view of the registry namespace: listings, aliases, versions and their indexes.

WHY a layer over Registry: the kernel asks the same few questions thousands of times a second
(`getattr` of every file during a `find`), so answers must come from memory; and a mount must keep
serving what it has seen when the backend goes away. The rules:

* Mutable facts (entities, projects, collections, version lists, aliases) come from the
  Registry, whose TTL cache (the mount's `--ttl`) bounds how stale they get. When the backend
  fails, the last good answer is served instead (and counted), never an empty tree.
* Immutable facts (a version's record and manifest) are kept for the life of the mount: a
  version's manifest is fetched once, indexed once (resolver.version_index, shared with the
  fsspec front end) and mapped from disk.
* "Not found" is a fact; "backend failed" is not: only BackendError that is not
  ObjectNotFoundError triggers the last-good fallback.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from artifactfs.errors import (
    ArtifactFSError,
    ArtifactNotFoundError,
    BackendError,
    InvalidNameError,
    ObjectNotFoundError,
)
from artifactfs.fusefs.stats import MountStats
from artifactfs.resolver.manifest_index import ManifestIndex
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry
from artifactfs.resolver.version_index import open_version_index

log = logging.getLogger(__name__)

T = TypeVar("T")
OPEN_INDEXES = 256


class NotFound(ArtifactFSError, LookupError):
    """The name does not exist (ENOENT)."""


class Unavailable(ArtifactFSError, OSError):
    """The backend failed and nothing was cached to answer with (EIO)."""


@dataclass
class VersionView:
    """An immutable version as the mount serves it: record + mapped manifest index."""

    record: VersionRecord
    index: ManifestIndex
    mtime: float


def _parse_time(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return 0.0


class Catalog:
    """Answers the namespace questions of the mount, from memory when it can."""

    def __init__(self, registry: Registry, index_dir: Path, stats: MountStats) -> None:
        self.registry = registry
        self.index_dir = index_dir
        self.stats = stats
        self._lock = threading.Lock()
        self._last_good: dict[tuple[Any, ...], Any] = {}
        self._views: OrderedDict[tuple[str, str, str, int], VersionView] = OrderedDict()
        self._view_locks: dict[tuple[str, str, str, int], threading.Lock] = {}

    # -- mutable facts with last-good fallback --------------------------------------------------
    def _fresh(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        try:
            value = load()
        except (ObjectNotFoundError, ArtifactNotFoundError, InvalidNameError) as e:
            raise NotFound(str(e)) from e
        except (BackendError, OSError) as e:
            self.stats.add(backend_errors=1)
            with self._lock:
                if key in self._last_good:
                    self.stats.add(stale_listings_served=1)
                    log.warning("backend failed (%s); serving the last good %s", e, key[0])
                    return self._last_good[key]
            raise Unavailable(f"backend unavailable: {e}") from e
        with self._lock:
            self._last_good[key] = value
        return value

    def entities(self) -> list[str]:
        return self._fresh(("entities",), self.registry.entities)

    def projects(self, entity: str) -> list[str]:
        return self._fresh(("projects", entity), lambda: self.registry.projects(entity))

    def collections(self, entity: str, project: str) -> list[str]:
        return self._fresh(
            ("collections", entity, project), lambda: self.registry.collections(entity, project)
        )

    def version_numbers(self, entity: str, project: str, name: str) -> list[int]:
        return self._fresh(
            ("versions", entity, project, name),
            lambda: self.registry.version_numbers(entity, project, name),
        )

    def aliases(self, entity: str, project: str, name: str) -> dict[str, int]:
        return self._fresh(
            ("aliases", entity, project, name),
            lambda: self.registry.aliases(entity, project, name),
        )

    def has_entity(self, entity: str) -> bool:
        return entity in self.entities()

    def has_project(self, entity: str, project: str) -> bool:
        return self.has_entity(entity) and project in self.projects(entity)

    def project_listing(self, entity: str, project: str) -> dict[str, str | None]:
        """`name:vN` -> None (a version dir) and `name:alias` -> `name:vN` (a symlink)."""
        out: dict[str, str | None] = {}
        for name in self.collections(entity, project):
            try:
                numbers = self.version_numbers(entity, project, name)
                aliases = self.aliases(entity, project, name)
            except NotFound:
                continue
            for n in numbers:
                out[f"{name}:v{n}"] = None
            for alias, n in aliases.items():
                out[f"{name}:{alias}"] = f"{name}:v{n}"
        return out

    def alias_target(self, entity: str, project: str, name: str, alias: str) -> str:
        n = self.aliases(entity, project, name).get(alias)
        if n is None:
            raise NotFound(f"no alias {alias!r} of {entity}/{project}/{name}")
        return f"{name}:v{n}"

    # -- immutable versions ---------------------------------------------------------------------
    def version(self, entity: str, project: str, name: str, n: int) -> VersionView:
        """The version and its manifest index, loaded once and kept (versions never change)."""
        key = (entity, project, name, n)
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view
            vlock = self._view_locks.setdefault(key, threading.Lock())
        with vlock:  # one loader per version; others wait for it rather than fetch again
            with self._lock:
                view = self._views.get(key)
                if view is not None:
                    return view
            view = self._load_version(entity, project, name, n)
            with self._lock:
                self._views[key] = view
                while len(self._views) > OPEN_INDEXES:
                    _, old = self._views.popitem(last=False)
                    old.index.close()
        return view

    def _load_version(self, entity: str, project: str, name: str, n: int) -> VersionView:
        # Asked by record, not by listing: an alias may already point at a version newer than
        # the cached listing (separate TTL entries). A missing record is ENOENT.
        record = self._fresh(
            ("record", entity, project, name, n),
            lambda: self.registry.version(entity, project, name, n),
        )
        try:
            index, how = open_version_index(self.registry, record, self.index_dir)
        except ObjectNotFoundError as e:
            raise Unavailable(f"manifest of {record.full_name} is missing: {e}") from e
        except (BackendError, OSError) as e:
            self.stats.add(backend_errors=1)
            raise Unavailable(f"cannot fetch the manifest of {record.full_name}: {e}") from e
        if how == "fetched":
            self.stats.add(indexes_fetched=1)
        elif how == "built":
            self.stats.add(indexes_built=1)
        return VersionView(record, index, _parse_time(record.created_at))

    def version_aliases(self, view: VersionView) -> list[str]:
        r = view.record
        try:
            amap = self.aliases(r.entity, r.project, r.name)
        except (NotFound, Unavailable):
            return []
        return sorted(a for a, v in amap.items() if v == r.version)

    def close(self) -> None:
        with self._lock:
            for view in self._views.values():
                view.index.close()
            self._views.clear()
