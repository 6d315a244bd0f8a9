"""Names -> versions -> manifests over a Store, and the one commit path every writer uses.

Coordination between writers (processes, machines) rests only on the store's atomic operations
(DESIGN §4): a version number is taken by a create-only write of its record (a lost race retries
at N+1), and aliases move by compare-and-swap (a lost race re-reads and retries). `latest` only
ever moves forward, so a slow writer can never move it back.

Mutable things (aliases, listings, version records) are cached for `ttl` seconds; manifests are
immutable and cached for good, in memory and, when `object_cache_dir` is given, on disk so that
an offline mount can still list what it has seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cachetools import LRUCache, TTLCache

from artifactfs.errors import (
    ArtifactFSError,
    ArtifactNotFoundError,
    ArtifactTypeMismatchError,
    InvalidMetadataError,
    InvalidNameError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from artifactfs.fsutil import atomic_path
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Progress, Store
from artifactfs.resolver.manifest import Manifest, ManifestEntry, b64_to_hex
from artifactfs.resolver.manifest_index import IndexError_, build_index_file
from artifactfs.resolver.names import (
    ArtifactRef,
    check_alias,
    check_name,
    is_digest,
    version_number,
)
from artifactfs.resolver.records import CollectionRecord, RunRecord, VersionRecord, now_iso

log = logging.getLogger(__name__)

MAX_METADATA_KEYS = 100
INDEX_AT_COMMIT_ENTRIES = 100_000
"""Manifests with this many entries get their compact index built once, at commit, and stored
beside them: every later mount fetches ready arrays instead of parsing the JSON (seconds at 1M)."""
MAX_RACE_RETRIES = 10_000


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


class Registry:
    """The registry of one store: read names, commit versions, move aliases, record lineage."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 0.0,
        object_cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.RLock()
        self._mutable: TTLCache[Any, Any] | None = (
            TTLCache(maxsize=100_000, ttl=ttl) if ttl > 0 else None
        )
        self._manifests: LRUCache[str, Manifest] = LRUCache(maxsize=32)
        self._object_dir = Path(object_cache_dir) if object_cache_dir else None

    # -- small caching helpers ------------------------------------------------------------------
    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if self._mutable is None:
            return compute()
        with self._lock:
            if key in self._mutable:
                return self._mutable[key]
        value = compute()
        with self._lock:
            self._mutable[key] = value
        return value

    def invalidate(self) -> None:
        """Forget every cached mutable fact (aliases, listings, records)."""
        if self._mutable is not None:
            with self._lock:
                self._mutable.clear()

    def _get_json(self, key: str) -> tuple[dict[str, Any], str]:
        raw, etag = self.store.get(key)
        return json.loads(raw), etag

    # -- listing --------------------------------------------------------------------------------
    def entities(self) -> list[str]:
        return self._cached(("ls",), lambda: sorted(self.store.list_children(keys.entity_prefix())))

    def projects(self, entity: str) -> list[str]:
        check_name(entity, "entity")
        return self._cached(
            ("ls", entity), lambda: sorted(self.store.list_children(keys.project_prefix(entity)))
        )

    def collections(self, entity: str, project: str) -> list[str]:
        check_name(entity, "entity")
        check_name(project, "project")
        prefix = keys.collections_prefix(entity, project)
        return self._cached(
            ("ls", entity, project), lambda: sorted(self.store.list_children(prefix))
        )

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord:
        def load() -> CollectionRecord:
            try:
                raw, _ = self.store.get(keys.collection_key(entity, project, name))
            except ObjectNotFoundError as e:
                raise ArtifactNotFoundError(
                    f"no artifact collection {entity}/{project}/{name}"
                ) from e
            return CollectionRecord.from_bytes(raw)

        for part, what in ((entity, "entity"), (project, "project"), (name, "name")):
            check_name(part, what)
        return self._cached(("coll", entity, project, name), load)

    def version_numbers(self, entity: str, project: str, name: str) -> list[int]:
        """Committed (not deleted) version numbers of a collection, ascending."""

        def load() -> list[int]:
            prefix = keys.versions_prefix(entity, project, name)
            found = [keys.parse_version_file(n) for n in self.store.list_children(prefix)]
            numbers = sorted(n for n in found if n is not None)
            return [n for n in numbers if self._version_or_none(entity, project, name, n)]

        return self._cached(("versions", entity, project, name), load)

    def versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        return [
            self.version(entity, project, name, n)
            for n in self.version_numbers(entity, project, name)
        ]

    def _version_or_none(
        self, entity: str, project: str, name: str, n: int
    ) -> VersionRecord | None:
        def load() -> VersionRecord | None:
            try:
                raw, etag = self.store.get(keys.version_key(entity, project, name, n))
            except ObjectNotFoundError:
                return None
            rec = VersionRecord.from_bytes(raw, etag)
            return None if rec.state == "DELETED" else rec

        return self._cached(("version", entity, project, name, n), load)

    def version(self, entity: str, project: str, name: str, n: int) -> VersionRecord:
        rec = self._version_or_none(entity, project, name, n)
        if rec is None:
            raise ArtifactNotFoundError(f"no version {entity}/{project}/{name}:v{n}")
        return rec

    def aliases(self, entity: str, project: str, name: str) -> dict[str, int]:
        """alias -> version number for one collection (`latest` included, resolved fresh)."""

        def load() -> dict[str, int]:
            prefix = keys.aliases_prefix(entity, project, name)
            out: dict[str, int] = {}
            for child in self.store.list_children(prefix):
                if not child.endswith(".json"):
                    continue
                version, _ = self._read_alias(prefix + child)
                if version is not None:
                    out[child[: -len(".json")]] = version
            latest = self._latest_number(entity, project, name, out.get("latest"))
            if latest is None:
                out.pop("latest", None)
            else:
                out["latest"] = latest
            return {
                a: v
                for a, v in out.items()
                if a == "latest" or self._version_or_none(entity, project, name, v)
            }

        return self._cached(("aliases", entity, project, name), load)

    def version_aliases(self, record: VersionRecord) -> list[str]:
        amap = self.aliases(record.entity, record.project, record.name)
        return sorted(a for a, v in amap.items() if v == record.version)

    def _latest_number(self, entity: str, project: str, name: str, hint: int | None) -> int | None:
        """The newest committed version: the `latest` record, rolled forward past any version a
        crashed writer created but did not get to announce, or the listing's maximum."""
        if hint is None or self._version_or_none(entity, project, name, hint) is None:
            numbers = self.version_numbers(entity, project, name)
            return numbers[-1] if numbers else None
        n = hint
        while self.store.head(keys.version_key(entity, project, name, n + 1)) is not None:
            n += 1
        return n if self._version_or_none(entity, project, name, n) else hint

    # -- resolving names ------------------------------------------------------------------------
    def resolve(self, ref: ArtifactRef) -> VersionRecord:
        """`entity/project/name:alias|vN|digest` -> its version record (ArtifactNotFoundError)."""
        if not ref.entity or not ref.project:
            raise InvalidNameError(f"{ref} needs an entity and a project to resolve")
        alias = ref.alias or "latest"
        if not ref.name:
            return self._resolve_digest_anywhere(ref.entity, ref.project, alias)
        self.collection(ref.entity, ref.project, ref.name)
        n = version_number(alias)
        if n is None and is_digest(alias):
            n = self._digest_version(ref.entity, ref.project, ref.name, alias)
        if n is None:
            n = self.aliases(ref.entity, ref.project, ref.name).get(alias)
        if n is None:
            raise ArtifactNotFoundError(f"no alias {alias!r} in {ref.qualified_name}")
        return self.version(ref.entity, ref.project, ref.name, n)

    def _digest_version(self, entity: str, project: str, name: str, digest: str) -> int | None:
        try:
            data, _ = self._get_json(keys.digest_key(entity, project, name, digest))
        except ObjectNotFoundError:
            return None
        return int(data["version"])

    def _resolve_digest_anywhere(self, entity: str, project: str, digest: str) -> VersionRecord:
        for name in self.collections(entity, project):
            n = self._digest_version(entity, project, name, digest)
            if n is not None and self._version_or_none(entity, project, name, n):
                return self.version(entity, project, name, n)
        raise ArtifactNotFoundError(f"no artifact with digest {digest} in {entity}/{project}")

    def manifest(self, record: VersionRecord) -> Manifest:
        """The (immutable) manifest of a version, cached in memory and on disk."""
        key = record.manifest_key
        with self._lock:
            if key in self._manifests:
                return self._manifests[key]
        manifest = Manifest.from_bytes(self.manifest_bytes(record))
        with self._lock:
            self._manifests[key] = manifest
        return manifest

    def manifest_bytes(self, record: VersionRecord) -> bytes:
        """The manifest JSON of a version, from the on-disk object cache when it is there."""
        path = self.manifest_path(record)
        if path is not None:
            return path.read_bytes()
        raw, _ = self.store.get(record.manifest_key)
        return raw

    def manifest_path(self, record: VersionRecord) -> Path | None:
        """A local file holding the manifest JSON, fetched into the on-disk object cache if
        needed, so an offline process can still read what an earlier one fetched. None when
        there is no disk cache or it cannot hold the file (a full disk must not break reads)."""
        if self._object_dir is None:
            return None
        local = self._object_dir / record.manifest_key
        if local.is_file():
            return local
        raw, _ = self.store.get(record.manifest_key)
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(raw)
            os.replace(tmp, local)
        except OSError as e:
            log.warning("cannot cache %s on disk: %s", record.manifest_key, e)
            return None
        return local

    # -- committing -----------------------------------------------------------------------------
    def upload_entries(
        self, entries: Iterable[ManifestEntry], progress: Progress | None = None
    ) -> int:
        """Upload the staged content of `entries` that the store does not hold yet; return how
        many blobs were uploaded. Content-addressed, so a blob already present is skipped."""
        todo: dict[str, ManifestEntry] = {}
        for e in entries:
            if e.ref is None and e.local_path is not None:
                todo.setdefault(keys.blob_key(b64_to_hex(e.digest)), e)
        self.store.check_writable()

        def upload(item: tuple[str, ManifestEntry]) -> int:
            key, entry = item
            try:
                self.store.put_file(
                    key,
                    entry.local_path or "",
                    progress,
                    md5_hex=b64_to_hex(entry.digest),
                    if_absent=True,
                )
            except PreconditionFailedError:  # the store holds this content already
                if progress:
                    progress(entry.size or 0)
                return 0
            return 1

        if not todo:
            return 0
        with ThreadPoolExecutor(max_workers=min(self.store.concurrency, len(todo))) as pool:
            return sum(pool.map(upload, todo.items()))

    def _ensure_collection(self, entity: str, project: str, name: str, type_: str) -> None:
        rec = CollectionRecord(entity, project, name, type_)
        try:
            self.store.create(keys.collection_key(entity, project, name), rec.to_bytes())
        except PreconditionFailedError:
            existing = self.collection(entity, project, name)
            if existing.type != type_:
                raise ArtifactTypeMismatchError(
                    f"{entity}/{project}/{name} holds artifacts of type {existing.type!r}, "
                    f"not {type_!r}"
                ) from None

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
        """Make `manifest` a new version of entity/project/name, or return `latest` if it has the
        same digest (W&B: logging an unchanged artifact is a no-op). Order matters for crash
        safety: blobs, then manifest, then the version record (the commit point), then aliases.
        A crash before the record leaves only unreferenced, content-addressed objects behind.
        `dedup_latest=False` always creates a version (links dedup by source instead)."""
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
        latest = self._fresh_latest(entity, project, name)
        if dedup_latest and latest is not None and latest.digest == digest:
            log.info("%s is unchanged (digest %s); no new version", latest.full_name, digest)
            self._apply_aliases(latest, alias_list)
            return latest

        self.upload_entries(manifest, progress)
        raw_manifest = manifest.to_bytes()
        manifest_key = keys.manifest_key(hashlib.md5(raw_manifest).hexdigest())
        if self.store.head(manifest_key) is None:
            self.store.put(manifest_key, raw_manifest)
        if len(manifest) >= INDEX_AT_COMMIT_ENTRIES:
            self._publish_manifest_index(manifest_key, raw_manifest)

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
        )
        self.store.sync()  # content durable before the record that makes it a version
        self._allocate(record)
        try:
            self.store.create(
                keys.digest_key(entity, project, name, digest),
                json.dumps({"version": record.version}).encode(),
            )
        except PreconditionFailedError:
            pass  # an earlier version has the same contents; the first one keeps the digest
        self._apply_aliases(record, ["latest", *alias_list])
        self.invalidate()
        log.info(
            "committed %s (%d files, %d bytes)", record.full_name, record.file_count, record.size
        )
        return record

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

    def fetch_manifest_index(self, record: VersionRecord, dest: Path) -> bool:
        """Copy the prebuilt index of `record`'s manifest to `dest` (atomically); False when the
        version has none. The caller must check it (manifest_index.check_untrusted): it comes
        from the store, like a manifest, and gets the same path validation."""
        try:
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                self.store.download_to(keys.manifest_index_key(record.manifest_key), f)
        except ObjectNotFoundError:
            return False
        return True

    def _fresh_latest(self, entity: str, project: str, name: str) -> VersionRecord | None:
        """`latest` read from the store now: only its alias record (rolled forward past any
        unannounced version), not every alias, so a commit costs a handful of requests."""
        self.invalidate()
        hint, _ = self._read_alias(keys.alias_key(entity, project, name, "latest"))
        n = self._latest_number(entity, project, name, hint)
        return None if n is None else self.version(entity, project, name, n)

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

    # -- aliases --------------------------------------------------------------------------------
    def _read_alias(self, key: str) -> tuple[int | None, str | None]:
        """(version, etag) of an alias record; version None for a removed alias (its record is
        kept as `{"version": null}` so removal, too, is a compare-and-swap), etag None if the
        record does not exist."""
        try:
            data, etag = self._get_json(key)
        except ObjectNotFoundError:
            return None, None
        version = data.get("version")
        return (None if version is None else int(version)), etag

    def _apply_aliases(self, record: VersionRecord, aliases: Iterable[str]) -> None:
        for alias in dict.fromkeys(aliases):
            self.set_alias(record, alias)

    def set_alias(self, record: VersionRecord, alias: str) -> None:
        """Point `alias` at `record` by compare-and-swap. `latest` only moves forward."""
        if alias != "latest":
            check_alias(alias)

        def settled(current: int | None) -> bool:
            if current is None:
                return False
            return current == record.version or (
                alias == "latest"
                and current > record.version
                and self._version_or_none(record.entity, record.project, record.name, current)
                is not None
            )

        self._swap_alias(record, alias, record.version, settled, "move")

    def remove_alias(self, record: VersionRecord, alias: str) -> None:
        """Remove `alias` if it still points at `record`: a compare-and-swap to a removed marker,
        so an alias another writer just moved elsewhere is never deleted by mistake."""
        self._swap_alias(record, alias, None, lambda current: current != record.version, "remove")

    def _swap_alias(
        self,
        record: VersionRecord,
        alias: str,
        target: int | None,
        settled: Callable[[int | None], bool],
        verb: str,
    ) -> None:
        """The one alias update loop: read the record, stop if `settled(current)` says nothing
        is left to do, else swap in `target` on the etag read; a lost race reads again."""
        key = keys.alias_key(record.entity, record.project, record.name, alias)
        body = json.dumps({"version": target, "updated_at": now_iso()}).encode()
        for _ in range(MAX_RACE_RETRIES):
            current, etag = self._read_alias(key)
            if settled(current):
                return
            try:
                self.store.swap(key, body, etag)
                self.invalidate()
                return
            except PreconditionFailedError:
                continue
        raise PreconditionFailedError(
            f"could not {verb} alias {alias!r} of {record.qualified_name}"
        )

    def set_aliases(self, record: VersionRecord, wanted: Iterable[str]) -> list[str]:
        """Make `record`'s aliases equal `wanted` (Artifact.save): add the missing ones, remove
        the dropped ones, each by compare-and-swap. `latest` is the registry's to move, so it is
        neither added nor removed here. Every alias is validated before anything is written."""
        wanted_set = {a for a in dict.fromkeys(wanted) if a != "latest"}
        for alias in wanted_set:
            check_alias(alias)
        self.invalidate()
        current = {a for a in self.version_aliases(record) if a != "latest"}
        for alias in sorted(wanted_set - current):
            self.set_alias(record, alias)
        for alias in sorted(current - wanted_set):
            self.remove_alias(record, alias)
        self.invalidate()
        return self.version_aliases(record)

    def link(
        self,
        record: VersionRecord,
        entity: str,
        project: str,
        name: str,
        aliases: Iterable[str] = (),
    ) -> VersionRecord:
        """Link a version into a portfolio collection: a version there with the same manifest and
        `source` pointing back. Linking the same source twice returns the existing link (only
        its aliases change), so promotion scripts can be re-run safely."""
        alias_list = [a for a in dict.fromkeys(aliases) if a != "latest"]
        for a in alias_list:
            check_alias(a)
        source = record.source or {
            "entity": record.entity,
            "project": record.project,
            "name": record.name,
            "version": record.version,
            "id": record.id,
        }
        try:
            self.collection(entity, project, name)
            existing = self.versions(entity, project, name)
        except ArtifactNotFoundError:
            existing = []
        for linked in existing:
            if linked.source and linked.source.get("id") == source["id"]:
                self._apply_aliases(linked, alias_list)
                return linked
        return self.commit(
            entity,
            project,
            name,
            record.type,
            self.manifest(record),
            description=record.description,
            metadata=record.metadata,
            aliases=alias_list,
            run_id=record.logged_by,
            source=source,
            dedup_latest=False,
        )

    def update_version(self, record: VersionRecord) -> VersionRecord:
        """Persist description/metadata/state changes of an existing version (compare-and-swap)."""
        record.metadata = check_metadata(record.metadata)
        key = keys.version_key(record.entity, record.project, record.name, record.version)
        record.updated_at = now_iso()
        record.etag = self.store.swap(key, record.to_bytes(), record.etag)
        self.invalidate()
        return record

    def delete_version(self, record: VersionRecord) -> None:
        """Tombstone a version: its number is never reused (mounts cache versions forever), its
        aliases go away, and `latest` falls back to the newest remaining version."""
        for alias in self.version_aliases(record):
            self.remove_alias(record, alias)
        record.state = "DELETED"
        self.update_version(record)
        self.invalidate()
        remaining = self.version_numbers(record.entity, record.project, record.name)
        if remaining:
            newest = self.version(record.entity, record.project, record.name, remaining[-1])
            key = keys.alias_key(record.entity, record.project, record.name, "latest")
            try:
                _, etag = self.store.get(key)
            except ObjectNotFoundError:
                etag = None
            body = json.dumps({"version": newest.version, "updated_at": now_iso()}).encode()
            try:
                self.store.swap(key, body, etag)
            except PreconditionFailedError:
                pass  # a concurrent commit moved latest forward, which is right too
        self.invalidate()

    # -- lineage --------------------------------------------------------------------------------
    def save_run(self, run: RunRecord) -> None:
        self.store.put(keys.run_key(run.entity, run.project, run.id), run.to_bytes())

    def run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        try:
            raw, _ = self.store.get(keys.run_key(entity, project, run_id))
        except ObjectNotFoundError:
            return None
        return RunRecord.from_bytes(raw)

    def record_use(self, record: VersionRecord, run: RunRecord) -> None:
        prefix = keys.used_by_prefix(record.entity, record.project, record.name, record.version)
        body = json.dumps({"entity": run.entity, "project": run.project, "id": run.id}).encode()
        try:
            self.store.create(f"{prefix}{run.id}.json", body)
        except PreconditionFailedError:
            pass  # this run already recorded its use

    def users(self, record: VersionRecord) -> list[RunRecord]:
        prefix = keys.used_by_prefix(record.entity, record.project, record.name, record.version)
        out = []
        for child in sorted(self.store.list_children(prefix)):
            try:
                ref, _ = self._get_json(prefix + child)
            except ObjectNotFoundError:
                continue
            run = self.run(ref["entity"], ref["project"], ref["id"])
            if run is not None:
                out.append(run)
        return out
