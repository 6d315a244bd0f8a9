"""Collection-level edits: description and tags, delete, rename (W&B's ArtifactCollection.save
and delete).

A collection record is created once by the first commit and changes only by compare-and-swap
here. Keys name collections (every version record lives under its collection's name), so a
rename cannot move objects atomically; it is a protocol instead:

1. the new name is claimed with a create-only collection record (a taken name refuses);
2. the old record is swapped to state RENAMED with `renamed_to` (from then on commits to the old
   name are refused and reads of it follow `renamed_to`);
3. every version, digest, alias and use record of the old name is copied to the new one with
   create-only writes (re-runnable: an existing copy is kept).

A commit that read the old record before step 2 and allocated its version after the copy of
step 3 re-reads the collection record after allocating (commit.py) and copies its own version
across, so no version is lost to the race. Deleting a collection marks it DELETED and tombstones
every version; the next commit to that name makes it ACTIVE again (version numbers go on, never
reused: mounts cache versions by number forever).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from artifactfs.errors import (
    ArtifactNotFoundError,
    InvalidNameError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.names import check_name
from artifactfs.resolver.records import CollectionRecord, VersionRecord, now_iso
from artifactfs.resolver.registry.aliases import MAX_RACE_RETRIES, AliasWriter
from artifactfs.resolver.registry.commit import VersionWriter
from artifactfs.resolver.registry.reads import RegistryReader

log = logging.getLogger(__name__)


def load_collection(store: Store, entity: str, project: str, name: str) -> CollectionRecord:
    """The collection record as stored now, with its etag (ArtifactNotFoundError if none)."""
    try:
        raw, etag = store.get(keys.collection_key(entity, project, name))
    except ObjectNotFoundError as e:
        raise ArtifactNotFoundError(f"no artifact collection {entity}/{project}/{name}") from e
    return CollectionRecord.from_bytes(raw, etag)


class CollectionWriter:
    """Edits of whole collections in one store's registry."""

    def __init__(
        self, store: Store, reader: RegistryReader, aliases: AliasWriter, writer: VersionWriter
    ) -> None:
        self.store = store
        self.reader = reader
        self.aliases = aliases
        self.writer = writer

    def update(
        self, entity: str, project: str, name: str, change: Callable[[CollectionRecord], None]
    ) -> CollectionRecord:
        """Apply `change` to the stored collection record by compare-and-swap (re-read and
        re-applied when another writer got there first)."""
        key = keys.collection_key(entity, project, name)
        for _ in range(MAX_RACE_RETRIES):
            rec = load_collection(self.store, entity, project, name)
            change(rec)
            rec.updated_at = now_iso()
            try:
                rec.etag = self.store.swap(key, rec.to_bytes(), rec.etag)
                self.reader.invalidate()
                return rec
            except PreconditionFailedError:
                continue
        raise PreconditionFailedError(f"could not update collection {entity}/{project}/{name}")

    def delete(self, entity: str, project: str, name: str) -> None:
        """Mark the collection DELETED, then tombstone every version (aliases go with them)."""

        def mark(rec: CollectionRecord) -> None:
            rec.state = "DELETED"

        self.update(entity, project, name, mark)
        self.reader.invalidate()
        for record in self.reader.versions(entity, project, name):
            self.writer.delete_version(record)
        self.reader.invalidate()

    def rename(self, entity: str, project: str, old: str, new: str) -> CollectionRecord:
        """Rename `old` to `new` in the same project (the protocol in the module docstring)."""
        check_name(new, "collection name")
        source = load_collection(self.store, entity, project, old)
        if source.state != "ACTIVE":
            raise InvalidNameError(f"{entity}/{project}/{old} is {source.state.lower()}")
        claimed = CollectionRecord(
            entity,
            project,
            new,
            source.type,
            description=source.description,
            tags=list(source.tags),
        )
        try:
            self.store.create(keys.collection_key(entity, project, new), claimed.to_bytes())
        except PreconditionFailedError:
            raise InvalidNameError(
                f"cannot rename {old} to {new}: {entity}/{project}/{new} exists"
            ) from None

        def mark(rec: CollectionRecord) -> None:
            rec.state = "RENAMED"
            rec.renamed_to = new

        self.update(entity, project, old, mark)
        self.copy_all(entity, project, old, new)
        self.reader.invalidate()
        return load_collection(self.store, entity, project, new)

    def copy_all(self, entity: str, project: str, old: str, new: str) -> None:
        """Copy every version (with its digest, alias and use records) from `old` to `new`."""
        self.reader.invalidate()
        for record in self.reader.versions(entity, project, old):
            self.copy_version(record, new)
        for alias, n in self.reader.aliases(entity, project, old).items():
            if alias == "latest":
                continue  # the registry's own: the copies' newest is latest
            try:
                target = self.reader.version(entity, project, new, n)
            except ArtifactNotFoundError:
                continue
            self.aliases.set_alias(target, alias)

    def copy_version(self, record: VersionRecord, new: str) -> None:
        """Create `record` under the collection `new` with the same number (kept if present),
        with its digest record and use markers, and move `latest` there forward."""
        entity, project = record.entity, record.project
        copy = VersionRecord.from_bytes(record.to_bytes())
        copy.name = new
        try:
            copy.etag = self.store.create(
                keys.version_key(entity, project, new, copy.version), copy.to_bytes()
            )
        except PreconditionFailedError:
            pass  # copied before (a re-run, or the committer and the renamer both copied)
        try:
            self.store.create(
                keys.digest_key(entity, project, new, copy.digest),
                f'{{"version": {copy.version}}}'.encode(),
            )
        except PreconditionFailedError:
            pass
        old_users = keys.used_by_prefix(entity, project, record.name, record.version)
        new_users = keys.used_by_prefix(entity, project, new, record.version)
        for child in self.store.list_children(old_users):
            try:
                raw, _ = self.store.get(old_users + child)
                self.store.create(new_users + child, raw)
            except (ObjectNotFoundError, PreconditionFailedError):
                continue
        self.reader.invalidate()
        self.aliases.set_alias(copy, "latest")
