"""Writing versions: the one commit path every writer uses, and later edits of a version record.

Apart from the reads and the alias updates because this is where crash safety and version
allocation live (DESIGN §4): content goes first (blobs, manifest, its index, the block digests of
its big entries: resolver/blockrecord.py), then the version record, created with a create-only write of `v<N>.json` (the commit point; a lost race retries
at N+1), then the digest record, the aliases and the collection's listing index (listing.py).
A crash before the record leaves only unreferenced, content-addressed objects behind, which
`artifactfs gc` removes once they are older than the grace period.

Garbage collection's side of the bargain (docs/SEMANTICS.md, "Garbage collection"): content a
commit reuses instead of uploading (a blob or manifest already in the store) must be young, or
gc could be removing it at that very moment; so an existing object older than half the grace
period is written again (refreshed), and checked again after the commit point.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from artifactfs.errors import (
    ArtifactFSError,
    ArtifactTypeMismatchError,
    BackendError,
    InvalidMetadataError,
    InvalidNameError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Progress, Store
from artifactfs.resolver.blockrecord import encode, record_key
from artifactfs.resolver.manifest import Manifest, ManifestEntry, b64_to_hex
from artifactfs.resolver.manifest_index import IndexError_, build_index_file
from artifactfs.resolver.names import check_alias, check_name
from artifactfs.resolver.records import CollectionRecord, VersionRecord, now_iso
from artifactfs.resolver.registry.aliases import MAX_RACE_RETRIES, AliasWriter
from artifactfs.resolver.registry.listing import VersionListing
from artifactfs.resolver.registry.reads import RegistryReader

log = logging.getLogger(__name__)

MAX_METADATA_KEYS = 100
INDEX_AT_COMMIT_ENTRIES = 100_000
"""Manifests with this many entries get their compact index built once, at commit, and stored
beside them: every later mount fetches ready arrays instead of parsing the JSON (seconds at 1M)."""
DEFAULT_GC_GRACE = 86400.0

Rewrite = Callable[[], object]
"""Writes one reused object again (a refresh, or a repair after the commit point)."""


def check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Validate metadata before anything is written: W&B's hard limit of 100 keys, string keys,
    and JSON-serializable values (it is stored as JSON in the version record)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidMetadataError(f"metadata must be a dict, not {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidMetadataError(
            f"metadata has {len(metadata)} keys; the limit is {MAX_METADATA_KEYS}"
        )
    bad = [k for k in metadata if not isinstance(k, str)]
    if bad:
        raise InvalidMetadataError(f"metadata keys must be strings, got {bad[:3]!r}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise InvalidMetadataError(f"metadata is not JSON-serializable: {e}") from e
    return dict(metadata)


class VersionWriter:
    """Commits, edits and deletes versions of one store's registry."""

    def __init__(
        self,
        store: Store,
        reader: RegistryReader,
        aliases: AliasWriter,
        gc_grace: float = DEFAULT_GC_GRACE,
    ) -> None:
        self.store = store
        self.reader = reader
        self.aliases = aliases
        self.follow_rename: Callable[[VersionRecord, str], None] | None = None
        """Set by the facade (collections.py): copies a version committed under a name that
        was renamed meanwhile to the new name."""
        self.gc_grace = gc_grace

    def upload_entries(
        self, entries: Iterable[ManifestEntry], progress: Progress | None = None
    ) -> int:
        """Upload the staged content of `entries` that the store does not hold yet; return how
        many blobs were uploaded. Content-addressed, so a blob already present is skipped."""
        return self._upload(entries, progress, {})

    def _upload(
        self,
        entries: Iterable[ManifestEntry],
        progress: Progress | None,
        refreshed: dict[str, Rewrite],
    ) -> int:
        """upload_entries, noting in `refreshed` the reused blobs it wrote again (`_reuse`).
        The first failure cancels what has not started, so a dead backend fails the commit
        within one request deadline, not one per queued blob."""
        todo: dict[str, ManifestEntry] = {}
        for e in entries:
            if e.ref is None and e.local_path is not None:
                todo.setdefault(keys.blob_key(b64_to_hex(e.digest)), e)
        self.store.check_writable()
        lock = threading.Lock()

        def upload(key: str, entry: ManifestEntry) -> int:
            path, md5_hex = entry.local_path or "", b64_to_hex(entry.digest)
            try:
                self.store.put_file(key, path, progress, md5_hex=md5_hex, if_absent=True)
            except PreconditionFailedError:  # the store holds this content already
                rewrite = self._reuse(key, lambda: self.store.put_file(key, path, md5_hex=md5_hex))
                if rewrite is not None:
                    with lock:
                        refreshed[key] = rewrite
                if progress:
                    progress(entry.size or 0)
                return 0
            return 1

        if not todo:
            return 0
        pool = ThreadPoolExecutor(max_workers=min(self.store.concurrency, len(todo)))
        futures: list[Future[int]] = [pool.submit(upload, k, e) for k, e in todo.items()]
        try:
            done = sum(f.result() for f in as_completed(futures))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return done

    def _reuse(self, key: str, rewrite: Rewrite) -> Rewrite | None:
        """An object this commit will reference without writing it: if it is older than half
        the grace period (or its age is unknown), write it again so gc sees it as young for the
        rest of the commit; return the rewrite to repeat should it vanish anyway."""
        info = self.store.head(key)
        if info is not None and info.age is not None and info.age < self.gc_grace / 2:
            return None
        rewrite()
        return rewrite

    def _recheck(self, refreshed: dict[str, Rewrite]) -> None:
        """After the commit point: every reused-and-refreshed object is still there (a gc that
        looked at it just before the refresh may have removed it after); write it again if not."""
        for key, rewrite in refreshed.items():
            if self.store.head(key) is None:
                log.warning(
                    "%s vanished during the commit (a concurrent gc); writing it again", key
                )
                rewrite()

    def _ensure_collection(self, entity: str, project: str, name: str, type_: str) -> None:
        """Create the collection record, or check the existing one: same type, not renamed
        (commits go to the new name), and a DELETED one becomes ACTIVE again (with `type_`)."""
        rec = CollectionRecord(entity, project, name, type_)
        key = keys.collection_key(entity, project, name)
        try:
            self.store.create(key, rec.to_bytes())
            return
        except PreconditionFailedError:
            pass
        for _ in range(MAX_RACE_RETRIES):
            raw, etag = self.store.get(key)
            existing = CollectionRecord.from_bytes(raw, etag)
            if existing.state == "RENAMED":
                raise InvalidNameError(
                    f"{entity}/{project}/{name} was renamed to {existing.renamed_to}; "
                    "log to the new name"
                )
            if existing.state == "DELETED":
                existing.state, existing.type, existing.updated_at = "ACTIVE", type_, now_iso()
                try:
                    self.store.swap(key, existing.to_bytes(), etag)
                    self.reader.invalidate()
                    return
                except PreconditionFailedError:
                    continue
            if existing.type != type_:
                raise ArtifactTypeMismatchError(
                    f"{entity}/{project}/{name} holds artifacts of type {existing.type!r}, "
                    f"not {type_!r}"
                ) from None
            return
        raise PreconditionFailedError(f"could not prepare collection {entity}/{project}/{name}")

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
        inherit: Iterable[VersionRecord] = (),
    ) -> VersionRecord:
        """Make `manifest` a new version of entity/project/name, or return `latest` if it has the
        same digest (W&B: logging an unchanged artifact is a no-op). Order matters for crash
        safety: blobs, then manifest, then the version record (the commit point), then aliases.
        A crash before the record leaves only unreferenced, content-addressed objects behind.
        `dedup_latest=False` always creates a version (links dedup by source instead).
        Block digests of big entries not uploaded now come from `inherit`, the base version
        and `latest` (blockrecord.py)."""
        for part, what in (
            (entity, "entity"),
            (project, "project"),
            (name, "name"),
            (type_, "type"),
        ):
            check_name(part, what)
        alias_list = list(dict.fromkeys(aliases))
        for a in alias_list:
            if a != "latest":
                check_alias(a)
        metadata = check_metadata(metadata)  # fail now, not after the upload
        self.store.check_writable()
        self._ensure_collection(entity, project, name, type_)

        digest = manifest.digest()
        latest = self.reader.fresh_latest(entity, project, name)
        if dedup_latest and latest is not None and latest.digest == digest:
            log.info("%s is unchanged (digest %s); no new version", latest.full_name, digest)
            self.aliases.apply(latest, alias_list)
            return latest

        refreshed: dict[str, Rewrite] = {}
        self._upload(manifest, progress, refreshed)
        raw_manifest = manifest.to_bytes()
        manifest_key = keys.manifest_key(hashlib.md5(raw_manifest).hexdigest())
        if self.store.head(manifest_key) is None:
            self.store.put(manifest_key, raw_manifest)
        else:
            rewrite = self._reuse(manifest_key, lambda: self.store.put(manifest_key, raw_manifest))
            if rewrite is not None:
                refreshed[manifest_key] = rewrite
        if len(manifest) >= INDEX_AT_COMMIT_ENTRIES:
            self._publish_manifest_index(manifest_key, raw_manifest)
        bases = [*inherit, *([latest] if latest is not None else [])]
        if base_version is not None:
            base = self.reader.version_or_none(entity, project, name, base_version)
            bases += [base] if base is not None else []
        block_digests = self._publish_block_digests(manifest, bases, refreshed)

        record = VersionRecord(
            entity=entity,
            project=project,
            name=name,
            version=0 if latest is None else latest.version + 1,
            type=type_,
            digest=digest,
            manifest_key=manifest_key,
            size=manifest.size,
            file_count=len(manifest),
            id=uuid.uuid4().hex,
            description=description,
            metadata=metadata,
            logged_by=run_id,
            source=source,
            base_version=base_version,
            block_digests=block_digests,
        )
        self.store.sync()  # content durable before the record that makes it a version
        self._allocate(record)
        self._check_renamed(record)
        try:
            self.store.create(
                keys.digest_key(entity, project, name, digest),
                json.dumps({"version": record.version}).encode(),
            )
        except PreconditionFailedError:
            pass  # an earlier version has the same contents; the first one keeps the digest
        self._recheck(refreshed)
        self.aliases.apply(record, ["latest", *alias_list])
        self._index(lambda listing: listing.add(record), record)
        self.reader.invalidate()
        log.info(
            "committed %s (%d files, %d bytes)", record.full_name, record.file_count, record.size
        )
        return record

    def _publish_block_digests(
        self, manifest: Manifest, bases: list[VersionRecord], refreshed: dict[str, Rewrite]
    ) -> str | None:
        """Store the block-digest record of the manifest's big entries (content-addressed,
        like a manifest); its SHA-256, which the version record names, or None if none."""
        book = self.reader.block_digests
        objects = book.for_commit(manifest, bases)
        if not objects:
            return None
        raw = encode(objects)
        sha = hashlib.sha256(raw).hexdigest()
        key = record_key(sha)
        if self.store.head(key) is None:
            self.store.put(key, raw)
        else:
            rewrite = self._reuse(key, lambda: self.store.put(key, raw))
            if rewrite is not None:
                refreshed[key] = rewrite
        book.remember(sha, objects)
        return sha

    def _publish_manifest_index(self, manifest_key: str, raw_manifest: bytes) -> None:
        """Store the compact index of a big manifest. Only an optimization: a failure is logged
        and mounts build the index themselves, as they do for versions without one."""
        key = keys.manifest_index_key(manifest_key)
        try:
            if self.store.head(key) is not None:
                return
            with tempfile.TemporaryDirectory(prefix="artifactfs-index-") as tmp:
                manifest_path, index_path = Path(tmp, "manifest.json"), Path(tmp, "manifest.idx")
                manifest_path.write_bytes(raw_manifest)
                build_index_file(manifest_path, index_path)
                self.store.put_file(key, str(index_path))
        except (IndexError_, ArtifactFSError, OSError) as e:
            log.warning("could not store the index of %s (mounts will build it): %s", key, e)

    def _allocate(self, record: VersionRecord) -> None:
        """Take the first free version number >= record.version with create-only writes."""
        for _ in range(MAX_RACE_RETRIES):
            key = keys.version_key(record.entity, record.project, record.name, record.version)
            try:
                record.etag = self.store.create(key, record.to_bytes())
                return
            except PreconditionFailedError:
                record.version += 1
        raise PreconditionFailedError(f"could not allocate a version of {record.qualified_name}")

    def _check_renamed(self, record: VersionRecord) -> None:
        """A rename may have copied the collection between our check and our allocation: if
        the record says so now, copy this version across too (collections.py)."""
        try:
            raw, _ = self.store.get(keys.collection_key(record.entity, record.project, record.name))
        except ObjectNotFoundError:
            return
        coll = CollectionRecord.from_bytes(raw)
        if coll.state == "RENAMED" and coll.renamed_to and self.follow_rename is not None:
            log.info("%s was renamed to %s meanwhile; copying", record.full_name, coll.renamed_to)
            self.follow_rename(record, coll.renamed_to)

    def _index(self, update: Callable[[VersionListing], object], record: VersionRecord) -> None:
        """Keep the listing index current; a failure only makes it lag, which readers
        tolerate (listing.py), so it is logged, not raised: the version exists."""
        try:
            update(VersionListing(self.store))
        except BackendError as e:
            log.warning("listing index of %s not updated (it lags): %s", record.full_name, e)

    def update_version(self, record: VersionRecord) -> VersionRecord:
        """Persist description/metadata/state changes of an existing version (compare-and-swap).
        The listing index marks the version unsettled first and copies the record after
        (listing.py), so no listing ever shows the old record as current after the swap."""
        record.metadata = check_metadata(record.metadata)
        key = keys.version_key(record.entity, record.project, record.name, record.version)
        listing = VersionListing(self.store)
        token = listing.begin_update(record)
        record.updated_at = now_iso()
        record.etag = self.store.swap(key, record.to_bytes(), record.etag)
        self._index(lambda listing: listing.settle(record, token), record)
        self.reader.invalidate()
        return record

    def delete_version(self, record: VersionRecord) -> None:
        """Tombstone a version: its number is never reused (mounts cache versions forever), its
        aliases go away, and `latest` falls back to the newest remaining version."""
        for alias in self.reader.version_aliases(record):
            self.aliases.remove_alias(record, alias)
        record.state = "DELETED"
        self.update_version(record)
        self.reader.invalidate()
        self.aliases.fall_back_latest(record)
        self.reader.invalidate()
