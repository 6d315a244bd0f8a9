"""The web page's data layer: registry facts shaped for pages, with no web framework in sight.

WHY apart from the web layer: every answer here is testable without HTTP or a browser, and the
routes stay a thin mapping from URLs to these calls. Names and records come from the Registry
(through its short TTL cache, like the mount's); files come from the version's compact manifest
index (resolver.version_index), the same mapped file the mount uses, so a 100k-file version is
listed page by page without parsing its manifest JSON again, in this process or the next.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Generic, TypeVar

from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver import version_index
from artifactfs.resolver.loadonce import LoadOnceCache
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.manifest_index import ManifestIndex
from artifactfs.resolver.names import check_name, parse_artifact_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.resolver import Resolver

T = TypeVar("T")
OPEN_INDEXES = 32
"""Mapped indexes kept open (an index costs an fd and address space, not resident memory)."""


@dataclass
class Page(Generic[T]):
    """One page of a longer listing (pages count from 1)."""

    items: list[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first(self) -> int:
        """1-based position of the first item (0 on an empty page)."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0


def page_of(items: Sequence[T], number: int, per_page: int) -> Page[T]:
    number = max(1, number)
    start = (number - 1) * per_page
    return Page(list(items[start : start + per_page]), number, per_page, len(items))


@dataclass
class CollectionSummary:
    entity: str
    project: str
    name: str
    type: str
    version_count: int
    latest: int | None
    size: int | None
    """Bytes of the latest version."""
    updated: str | None
    """The newest created/updated time among its versions."""


@dataclass
class VersionInfo:
    record: VersionRecord
    aliases: list[str]

    @property
    def label(self) -> str:
        return f"v{self.record.version}"


@dataclass
class FileRow:
    """One name in a directory listing of a version: a file, or a folder with its totals."""

    name: str
    path: str
    is_dir: bool
    size: int | None
    files: int
    digest: str | None = None
    ref: str | None = None


@dataclass
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass
class Diff:
    """What changed from version `a` to version `b` of a collection (paths sorted)."""

    a: VersionRecord
    b: VersionRecord
    added: list[str]
    removed: list[str]
    changed: list[str]
    fields: list[FieldChange]


def _entry_differs(x: dict[str, Any], y: dict[str, Any]) -> bool:
    """Same bytes, same entry: digest, ref and size decide (birthArtifactID and other extras
    differ between versions that share a file and are not a change of the file)."""
    return any(x.get(k) != y.get(k) for k in ("digest", "ref", "size"))


class Browser:
    """Read-only questions the pages ask, over one Resolver."""

    def __init__(self, resolver: Resolver, *, index_dir: Path | None = None) -> None:
        self.resolver = resolver
        self.registry = resolver.registry
        self.index_dir = index_dir or version_index.index_dir(resolver.config.cache_dir)
        self._lock = threading.Lock()
        self._indexes: LoadOnceCache[str, ManifestIndex] = LoadOnceCache(
            OPEN_INDEXES, evict=lambda index: index.close()
        )
        self._child_counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._diffs: OrderedDict[tuple[str, str], Diff] = OrderedDict()

    # -- namespace ------------------------------------------------------------------------------
    def projects_by_entity(self) -> list[tuple[str, list[str]]]:
        return [(e, self.registry.projects(e)) for e in self.registry.entities()]

    def collections(
        self,
        entity: str,
        project: str,
        number: int = 1,
        per_page: int = 50,
        keep: Callable[[str], bool] | None = None,
    ) -> Page[CollectionSummary]:
        """One page of a project's collections (those whose name `keep` accepts)."""
        names = self.registry.collections(check_name(entity, "entity"), project)
        if not names and project not in self.registry.projects(entity):
            raise ArtifactNotFoundError(f"no project {entity}/{project}")
        if keep is not None:
            names = [n for n in names if keep(n)]
        page = page_of(names, number, per_page)
        summaries = [self.collection(entity, project, n) for n in page.items]
        return Page(summaries, page.number, per_page, page.total)

    def collection(self, entity: str, project: str, name: str) -> CollectionSummary:
        coll = self.registry.collection(entity, project, name)
        versions = self.registry.versions(entity, project, name)
        latest = self.registry.aliases(entity, project, name).get("latest")
        newest = next((v for v in versions if v.version == latest), None)
        times = [t for v in versions for t in (v.created_at, v.updated_at) if t]
        return CollectionSummary(
            entity,
            project,
            name,
            coll.type,
            len(versions),
            latest,
            newest.size if newest else None,
            max(times) if times else None,
        )

    def versions(
        self, entity: str, project: str, name: str, number: int = 1, per_page: int = 50
    ) -> Page[VersionInfo]:
        """Versions newest first, with their aliases; only the page's records are read."""
        self.registry.collection(entity, project, name)
        numbers = self.registry.version_numbers(entity, project, name)[::-1]
        page = page_of(numbers, number, per_page)
        by_version: dict[int, list[str]] = {}
        for alias, n in self.registry.aliases(entity, project, name).items():
            by_version.setdefault(n, []).append(alias)
        items = [
            VersionInfo(
                self.registry.version(entity, project, name, n), sorted(by_version.get(n, []))
            )
            for n in page.items
        ]
        return Page(items, page.number, per_page, page.total)

    def version(self, entity: str, project: str, name: str, spec: str) -> VersionInfo:
        """`spec` is `vN`, an alias or a digest."""
        record = self.registry.resolve(parse_artifact_name(f"{entity}/{project}/{name}:{spec}"))
        return VersionInfo(record, self.registry.version_aliases(record))

    # -- files ----------------------------------------------------------------------------------
    def index(self, record: VersionRecord) -> ManifestIndex:
        """The version's mapped manifest index: from disk, prebuilt, or built once."""
        return self._indexes.get(
            record.manifest_key,
            lambda: version_index.open_version_index(self.registry, record, self.index_dir)[0],
        )

    def listing(
        self, record: VersionRecord, rel: str = "", number: int = 1, per_page: int = 200
    ) -> Page[FileRow]:
        """The names directly inside folder `rel` of a version, in path order, one page."""
        index = self.index(record)
        rel = rel.strip("/")
        if not index.is_dir(rel):
            raise ArtifactNotFoundError(f"no folder {rel!r} in {record.full_name}")
        total = self._child_count(record.manifest_key, index, rel)
        number = max(1, number)
        start = (number - 1) * per_page
        rows = []
        for child in islice(index.children(rel), start, start + per_page):
            path = f"{rel}/{child.name}" if rel else child.name
            if child.is_dir:
                below = index.under(path)
                rows.append(FileRow(child.name, path, True, index.size_sum(below), len(below)))
            else:
                e = index.entry(child.index)
                rows.append(FileRow(child.name, path, False, e.size, 1, e.digest, e.ref))
        return Page(rows, number, per_page, total)

    def _child_count(self, key: str, index: ManifestIndex, rel: str) -> int:
        with self._lock:
            count = self._child_counts.get((key, rel))
        if count is None:
            count = sum(1 for _ in index.children(rel))
            with self._lock:
                self._child_counts[(key, rel)] = count
                while len(self._child_counts) > 1024:
                    self._child_counts.popitem(last=False)
        return count

    def is_dir(self, record: VersionRecord, rel: str) -> bool:
        return self.index(record).is_dir(rel.strip("/"))

    def entry(self, record: VersionRecord, path: str) -> ManifestEntry:
        index = self.index(record)
        i = index.find(path)
        if i < 0:
            raise ArtifactNotFoundError(f"no file {path!r} in {record.full_name}")
        return index.entry(i)

    def read(self, entry: ManifestEntry, offset: int, length: int) -> bytes:
        """Bytes of an entry through the shared cache (a big one fetched by block, not whole)."""
        if entry.size is not None:
            length = max(0, min(length, entry.size - offset))
        if length == 0:
            return b""
        return self.resolver.read(entry, offset, length)

    # -- comparing versions ---------------------------------------------------------------------
    def diff(self, a: VersionRecord, b: VersionRecord) -> Diff:
        """Files added, removed and changed from `a` to `b`, and changed record fields. One
        merge walk over both sorted indexes; equal stored values are skipped without a parse."""
        key = (a.manifest_key + "@" + a.full_name, b.manifest_key + "@" + b.full_name)
        with self._lock:
            hit = self._diffs.get(key)
        if hit is not None:
            return hit
        added: list[str] = []
        removed: list[str] = []
        changed: list[str] = []
        if a.manifest_key != b.manifest_key:
            ia, ib = self.index(a), self.index(b)
            i = j = 0
            na, nb = len(ia), len(ib)
            while i < na and j < nb:
                x, y = ia.path_bytes(i), ib.path_bytes(j)
                if x == y:
                    if ia.meta_bytes(i) != ib.meta_bytes(j) and _entry_differs(
                        ia.meta(i), ib.meta(j)
                    ):
                        changed.append(ia.path(i))
                    i += 1
                    j += 1
                elif x < y:
                    removed.append(ia.path(i))
                    i += 1
                else:
                    added.append(ib.path(j))
                    j += 1
            removed.extend(ia.path(k) for k in range(i, na))
            added.extend(ib.path(k) for k in range(j, nb))
        result = Diff(a, b, added, removed, changed, _field_changes(a, b))
        with self._lock:
            self._diffs[key] = result
            while len(self._diffs) > 8:
                self._diffs.popitem(last=False)
        return result

    def close(self) -> None:
        self._indexes.clear()


def _field_changes(a: VersionRecord, b: VersionRecord) -> list[FieldChange]:
    out = [
        FieldChange(name, getattr(a, name), getattr(b, name))
        for name in ("type", "digest", "size", "file_count", "description")
        if getattr(a, name) != getattr(b, name)
    ]
    for k in sorted(set(a.metadata) | set(b.metadata)):
        old, new = a.metadata.get(k), b.metadata.get(k)
        if old != new or (k in a.metadata) != (k in b.metadata):
            out.append(FieldChange(f"metadata.{k}", old, new))
    return out
