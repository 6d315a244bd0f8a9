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
* Every question that needs the backend is answered within the mount's deadline
  (fusefs/deadline.py): past it, the last good answer, or EIO for what was never seen.
  Answers the mount already holds need no backend at all: an entity or project seen once
  exists (the registry never removes them), and a version's record, once read, is kept.
"""

from __future__ import annotations

import logging
import threading
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
    InvalidRecordError,
    ObjectNotFoundError,
)
from artifactfs.fusefs.deadline import Deadlines
from artifactfs.fusefs.stats import MountStats
from artifactfs.resolver.loadonce import LoadOnceCache
from artifactfs.resolver.manifest_check import MANIFEST_ERRORS
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


class Refused(Unavailable):
    """A record of the registry broke the rules (EIO; listed in `.artifactfs/errors.json`)."""


def _subject(key: tuple[Any, ...]) -> str:
    """`entity/project/name[:vN]` of a catalog key such as ("record", e, p, name, n)."""
    parts = [str(p) for p in key[1:]]
    return "/".join(parts[:3]) + (f":v{parts[3]}" if len(parts) > 3 else "")


@dataclass
class VersionView:
    """An immutable version as the mount serves it: record + mapped manifest index."""

    record: VersionRecord
    index: ManifestIndex
    mtime: float


def parse_time(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return 0.0


class Catalog:
    """Answers the namespace questions of the mount, from memory when it can."""

    def __init__(
        self,
        registry: Registry,
        index_dir: Path,
        stats: MountStats,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.registry = registry
        self.index_dir = index_dir
        self.stats = stats
        self.deadlines = deadlines or Deadlines(30.0)
        self._lock = threading.Lock()
        self._last_good: dict[tuple[Any, ...], Any] = {}
        self._records: dict[tuple[str, str, str, int], VersionRecord] = {}
        self._refused: dict[str, str] = {}
        self._refused_records: dict[str, str] = {}
        """Versions whose manifest broke the rules: full name -> why (`.artifactfs/errors.json`).
        Manifests are immutable, so the answer stays EIO for the life of the mount."""
        self._views: LoadOnceCache[tuple[str, str, str, int], VersionView] = LoadOnceCache(
            OPEN_INDEXES, evict=lambda view: view.index.close()
        )

    # -- mutable facts with last-good fallback --------------------------------------------------
    def _fresh(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        try:
            value = self.deadlines.call(key, load, f"{key[0]} {'/'.join(map(str, key[1:]))}")
        except (ObjectNotFoundError, ArtifactNotFoundError, InvalidNameError) as e:
            raise NotFound(str(e)) from e
        except InvalidRecordError as e:  # hostile or broken: refused, like a bad manifest
            subject = _subject(key)
            with self._lock:
                first = subject not in self._refused_records
                self._refused_records[subject] = str(e)
            if first:
                log.error("%s: record refused: %s", subject, e)
            raise Refused(f"{subject}: record refused: {e}") from e
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

    def answer(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        """`load()` within the deadline, else the last good answer for `key` (else EIO): for
        callers that combine the catalog's answers with others that need the backend."""
        return self._fresh(key, load)

    def entities(self) -> list[str]:
        return self._fresh(("entities",), self.registry.entities)

    def projects(self, entity: str) -> list[str]:
        return self._fresh(("projects", entity), lambda: self.registry.projects(entity))

    def collections(self, entity: str, project: str) -> list[str]:
        return self._fresh(
            ("collections", entity, project), lambda: self.registry.collections(entity, project)
        )

    def version_numbers(self, entity: str, project: str, name: str) -> list[int]:
        """Committed versions of a collection. The listing brings every record with it, and
        those are kept (`record`), so `ls -l` of a project asks nothing more per version."""

        def load() -> list[int]:
            records = self.registry.all_versions(entity, project, name)
            live = [n for n in sorted(records) if records[n].state != "DELETED"]
            with self._lock:
                for n in live:
                    self._records.setdefault((entity, project, name, n), records[n])
            return live

        return self._fresh(("versions", entity, project, name), load)

    def aliases(self, entity: str, project: str, name: str) -> dict[str, int]:
        return self._fresh(
            ("aliases", entity, project, name),
            lambda: self.registry.aliases(entity, project, name),
        )

    def _seen(self, key: tuple[Any, ...], name: str) -> bool:
        with self._lock:
            return name in self._last_good.get(key, ())

    def has_entity(self, entity: str) -> bool:
        # Seen once is enough: the registry never removes an entity, and a path walk (every
        # `stat` below it) must not wait on the backend for what the mount already knows.
        return self._seen(("entities",), entity) or entity in self.entities()

    def has_project(self, entity: str, project: str) -> bool:
        if self._seen(("projects", entity), project):
            return True
        return self.has_entity(entity) and project in self.projects(entity)

    def project_listing(self, entity: str, project: str) -> dict[str, str | None]:
        """`name:vN` -> None (a version dir) and `name:alias` -> `name:vN` (a symlink).

        One bounded operation with its own last good answer: it asks the backend about every
        collection, and the deadline holds for the whole listing, not for each question."""
        return self._fresh(
            ("project_listing", entity, project), lambda: self._project_listing(entity, project)
        )

    def _project_listing(self, entity: str, project: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name in self.collections(entity, project):
            try:
                numbers = self.version_numbers(entity, project, name)
                aliases = self.aliases(entity, project, name)
            except (NotFound, Refused):  # a broken collection hides no other
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
        return self._views.get(
            (entity, project, name, n), lambda: self._load_version(entity, project, name, n)
        )

    def record(self, entity: str, project: str, name: str, n: int) -> VersionRecord:
        """A version's record, read once and kept: the mount serves a version as it first saw
        it (a deleted version stays until remount, docs/SEMANTICS.md). Asked by record, not by
        listing: an alias may already point at a version newer than the cached listing."""
        key = (entity, project, name, n)
        with self._lock:
            record = self._records.get(key)
        if record is None:
            record = self._fresh(
                ("record", *key), lambda: self.registry.version(entity, project, name, n)
            )
            with self._lock:
                self._records[key] = record
        return record

    def _load_version(self, entity: str, project: str, name: str, n: int) -> VersionView:
        return self.deadlines.call(
            ("view", entity, project, name, n),
            lambda: self._load_view(entity, project, name, n),
            f"loading {entity}/{project}/{name}:v{n}",
        )

    def _load_view(self, entity: str, project: str, name: str, n: int) -> VersionView:
        record = self.record(entity, project, name, n)
        with self._lock:
            refused = self._refused.get(record.full_name)
        if refused is not None:
            raise Unavailable(refused)
        try:
            index, how = open_version_index(self.registry, record, self.index_dir)
        except MANIFEST_ERRORS as e:  # the same rules as the API's: the whole version is refused
            reason = f"{record.full_name}: manifest refused: {e}"
            log.error("%s", reason)
            self.stats.add(invalid_manifests=1)
            with self._lock:
                self._refused[record.full_name] = reason
            raise Unavailable(reason) from e
        except ObjectNotFoundError as e:
            raise Unavailable(f"manifest of {record.full_name} is missing: {e}") from e
        except (BackendError, OSError) as e:
            self.stats.add(backend_errors=1)
            raise Unavailable(f"cannot fetch the manifest of {record.full_name}: {e}") from e
        if how == "fetched":
            self.stats.add(indexes_fetched=1)
        elif how == "built":
            self.stats.add(indexes_built=1)
        return VersionView(record, index, parse_time(record.created_at))

    def version_aliases(self, r: VersionRecord) -> list[str]:
        try:
            amap = self.aliases(r.entity, r.project, r.name)
        except (NotFound, Unavailable):
            return []
        return sorted(a for a, v in amap.items() if v == r.version)

    def refused(self) -> dict[str, str]:
        """Versions this mount refused to show, and why (served as `.artifactfs/errors.json`)."""
        with self._lock:
            return dict(self._refused)

    def refused_records(self) -> dict[str, str]:
        """Collections and versions whose registry records broke the rules, and why."""
        with self._lock:
            return dict(self._refused_records)

    def close(self) -> None:
        self._views.clear()
