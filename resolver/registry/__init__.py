"""Names -> versions -> manifests over a Store, and the one commit path every writer uses.

Coordination between writers (processes, machines) rests only on the store's atomic operations
(DESIGN §4): a version number is taken by a create-only write of its record (a lost race retries
at N+1), and aliases move by compare-and-swap (a lost race re-reads and retries). `latest` only
ever moves forward, so a slow writer can never move it back.

`Registry` is a thin facade, so callers hold one object; the work is done by four collaborators
over the same store, each depending only on the ones before it:

    reads.py    RegistryReader  listings, records, aliases, resolve, manifests; the TTL cache
    aliases.py  AliasWriter     alias compare-and-swap (`latest` only moves forward)
    commit.py   VersionWriter   upload, version allocation and commit, edit, delete
    lineage.py  Lineage         runs, use records, links into other collections
    collections.py CollectionWriter  collection description/tags, delete, rename
    runs.py     RunStore        run records (compare-and-swap) and history chunks (create-only)

Mutable things (aliases, listings, version records) are cached for `ttl` seconds; manifests are
immutable and cached for good, in memory and, when `object_cache_dir` is given, on disk so that
an offline mount can still list what it has seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from artifactfs.resolver.backends.base import Progress, Store
from artifactfs.resolver.manifest import Manifest, ManifestEntry
from artifactfs.resolver.names import ArtifactRef
from artifactfs.resolver.records import CollectionRecord, RunRecord, VersionRecord
from artifactfs.resolver.registry.aliases import ANYWHERE, AliasWriter, Expected
from artifactfs.resolver.registry.collections import CollectionWriter
from artifactfs.resolver.registry.commit import (
    DEFAULT_GC_GRACE,
    MAX_METADATA_KEYS,
    VersionWriter,
    check_metadata,
)
from artifactfs.resolver.registry.lineage import Lineage
from artifactfs.resolver.registry.reads import RegistryReader
from artifactfs.resolver.registry.runs import RunStore


class Registry:
    """The registry of one store: read names, commit versions, move aliases, record lineage."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 0.0,
        object_cache_dir: str | os.PathLike[str] | None = None,
        gc_grace: float = DEFAULT_GC_GRACE,
    ) -> None:
        self.ttl = ttl
        self.reader = RegistryReader(store, ttl=ttl, object_cache_dir=object_cache_dir)
        self.alias_writer = AliasWriter(store, self.reader)
        self.writer = VersionWriter(store, self.reader, self.alias_writer, gc_grace)
        self.lineage = Lineage(store, self.reader, self.alias_writer, self.writer)
        self.collection_writer = CollectionWriter(
            store, self.reader, self.alias_writer, self.writer
        )
        self.writer.follow_rename = self.collection_writer.copy_version
        self.runs = RunStore(store)

    @property
    def store(self) -> Store:
        """The store every part of this registry talks to."""
        return self.reader.store

    @store.setter
    def store(self, store: Store) -> None:
        # Replacing the store (tests wrap it to count requests) replaces it for every part.
        for part in (
            self.reader,
            self.alias_writer,
            self.writer,
            self.lineage,
            self.collection_writer,
            self.runs,
        ):
            part.store = store

    # -- reads (RegistryReader) -----------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget every cached mutable fact (aliases, listings, records)."""
        self.reader.invalidate()

    def entities(self) -> list[str]:
        return self.reader.entities()

    def projects(self, entity: str) -> list[str]:
        return self.reader.projects(entity)

    def collections(self, entity: str, project: str) -> list[str]:
        return self.reader.collections(entity, project)

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord:
        return self.reader.collection(entity, project, name)

    def version_numbers(self, entity: str, project: str, name: str) -> list[int]:
        """Committed (not deleted) version numbers of a collection, ascending."""
        return self.reader.version_numbers(entity, project, name)

    def versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        return self.reader.versions(entity, project, name)

    def all_versions(self, entity: str, project: str, name: str) -> dict[int, VersionRecord]:
        """Every version record by number, deleted ones included (garbage collection)."""
        return self.reader.all_versions(entity, project, name)

    def version(self, entity: str, project: str, name: str, n: int) -> VersionRecord:
        return self.reader.version(entity, project, name, n)

    def aliases(self, entity: str, project: str, name: str) -> dict[str, int]:
        """alias -> version number for one collection (`latest` included, resolved fresh)."""
        return self.reader.aliases(entity, project, name)

    def version_aliases(self, record: VersionRecord) -> list[str]:
        return self.reader.version_aliases(record)

    def resolve(self, ref: ArtifactRef) -> VersionRecord:
        """`entity/project/name:alias|vN|digest` -> its version record (ArtifactNotFoundError)."""
        return self.reader.resolve(ref)

    def manifest(self, record: VersionRecord) -> Manifest:
        """The (immutable) manifest of a version, cached in memory and on disk."""
        return self.reader.manifest(record)

    def manifest_bytes(self, record: VersionRecord) -> bytes:
        return self.reader.manifest_bytes(record)

    def manifest_path(self, record: VersionRecord) -> Path | None:
        return self.reader.manifest_path(record)

    def fetch_manifest_index(self, record: VersionRecord, dest: Path) -> bool:
        """The prebuilt index of `record`'s manifest to `dest`; False when it has none."""
        return self.reader.fetch_manifest_index(record, dest)

    # -- versions (VersionWriter) ---------------------------------------------------------------
    def upload_entries(
        self, entries: Iterable[ManifestEntry], progress: Progress | None = None
    ) -> int:
        return self.writer.upload_entries(entries, progress)

    def commit(
        self,
        entity: str,
        project: str,
        name: str,
        type_: str,
        manifest: Manifest,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        aliases: Iterable[str] = (),
        run_id: str | None = None,
        base_version: int | None = None,
        source: dict[str, Any] | None = None,
        progress: Progress | None = None,
        dedup_latest: bool = True,
    ) -> VersionRecord:
        """A new version of entity/project/name (or `latest` when unchanged): VersionWriter."""
        return self.writer.commit(
            entity,
            project,
            name,
            type_,
            manifest,
            description=description,
            metadata=metadata,
            aliases=aliases,
            run_id=run_id,
            base_version=base_version,
            source=source,
            progress=progress,
            dedup_latest=dedup_latest,
        )

    def update_version(self, record: VersionRecord) -> VersionRecord:
        return self.writer.update_version(record)

    def delete_version(self, record: VersionRecord) -> None:
        self.writer.delete_version(record)

    # -- aliases (AliasWriter) ------------------------------------------------------------------
    def set_alias(
        self, record: VersionRecord, alias: str, *, expected: Expected = ANYWHERE
    ) -> None:
        self.alias_writer.set_alias(record, alias, expected=expected)

    def remove_alias(
        self, record: VersionRecord, alias: str, *, expected: Expected = ANYWHERE
    ) -> None:
        self.alias_writer.remove_alias(record, alias, expected=expected)

    def set_aliases(self, record: VersionRecord, wanted: Iterable[str]) -> list[str]:
        return self.alias_writer.set_aliases(record, wanted)

    # -- lineage (Lineage) ----------------------------------------------------------------------
    def link(
        self,
        record: VersionRecord,
        entity: str,
        project: str,
        name: str,
        aliases: Iterable[str] = (),
    ) -> VersionRecord:
        return self.lineage.link(record, entity, project, name, aliases)

    def unlink(self, linked: VersionRecord) -> None:
        self.lineage.unlink(linked)

    def linked(self, record: VersionRecord) -> list[VersionRecord]:
        """The portfolio versions that link the source version `record`."""
        return self.lineage.linked(record)

    # -- collections (CollectionWriter) ---------------------------------------------------------
    def update_collection(
        self, entity: str, project: str, name: str, change: Callable[[CollectionRecord], None]
    ) -> CollectionRecord:
        return self.collection_writer.update(entity, project, name, change)

    def delete_collection(self, entity: str, project: str, name: str) -> None:
        self.collection_writer.delete(entity, project, name)

    def rename_collection(self, entity: str, project: str, old: str, new: str) -> CollectionRecord:
        return self.collection_writer.rename(entity, project, old, new)

    # -- runs (RunStore; Lineage keeps the reads other parts use) -------------------------------
    def save_run(self, run: RunRecord) -> None:
        self.lineage.save_run(run)

    def run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        return self.lineage.run(entity, project, run_id)

    def record_use(self, record: VersionRecord, run: RunRecord) -> None:
        self.lineage.record_use(record, run)

    def users(self, record: VersionRecord) -> list[RunRecord]:
        return self.lineage.users(record)


__all__ = ["MAX_METADATA_KEYS", "Registry", "check_metadata"]
