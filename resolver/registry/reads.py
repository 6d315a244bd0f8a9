"""Reading the registry: listings, records, aliases, name resolution and manifests.

Apart from the writers because every writer needs these reads (to find `latest`, to check a
collection's type, to see which aliases a version holds) and none of them is needed to read: a
read-only mount uses this class and nothing that writes. It also owns the one cache of mutable
facts (aliases, listings, version records: `ttl` seconds) that the writers invalidate after
each write, and the cache of immutable manifests (for good, in memory and, with
`object_cache_dir`, on disk so that an offline mount can still list what it has seen).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cachetools import LRUCache, TTLCache

from artifactfs.errors import (
    ArtifactNotFoundError,
    InvalidNameError,
    InvalidRecordError,
    ObjectNotFoundError,
)
from artifactfs.fsutil import atomic_path
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.blockrecord import BlockDigestBook
from artifactfs.resolver.manifest import Manifest
from artifactfs.resolver.names import ArtifactRef, check_name, is_digest, version_number
from artifactfs.resolver.records import CollectionRecord, VersionRecord
from artifactfs.resolver.registry.listing import VersionListing

log = logging.getLogger(__name__)

MAX_RENAME_HOPS = 16
ROLL_FORWARD = 3
"""Versions `latest` is probed past (one HEAD each) before the listing index is asked."""


def get_json(store: Store, key: str) -> tuple[dict[str, Any], str]:
    """A JSON record of the store and its etag (ObjectNotFoundError when absent)."""
    raw, etag = store.get(key)
    return json.loads(raw), etag


def _check_manifest_key(record: VersionRecord) -> None:
    """A record made in memory skips `from_bytes`'s checks: a manifest is still only ever
    read from a key of the registry's layout, never from a local path the record names."""
    if not keys.is_manifest_key(record.manifest_key):
        raise InvalidRecordError(
            f"{record.full_name}: manifest_key {record.manifest_key[:80]!r} is not a manifest key"
        )


class RegistryReader:
    """Every read of one store's registry, through the caches described above."""

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 0.0,
        object_cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._mutable: TTLCache[Any, Any] | None = (
            TTLCache(maxsize=100_000, ttl=ttl) if ttl > 0 else None
        )
        self._manifests: LRUCache[str, Manifest] = LRUCache(maxsize=32)
        self._object_dir = Path(object_cache_dir) if object_cache_dir else None
        self.block_digests = BlockDigestBook(store, self._object_dir)
        """The block digests of the versions loaded (resolver/blockrecord.py)."""
        self._skipped: set[tuple[str, str]] = set()  # invalid names already logged

    # -- the cache of mutable facts -------------------------------------------------------------
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

    # -- listing --------------------------------------------------------------------------------
    def _names(self, prefix: str, what: str) -> list[str]:
        """The valid names under `prefix`, sorted. A key no writer of ours makes (`.hidden`,
        a name with spaces) is left out with one log line per name: one foreign key must not
        make the whole entity or project unlistable."""
        out = []
        for child in self.store.list_children(prefix):
            try:
                out.append(check_name(child, what))
            except InvalidNameError as e:
                if (prefix, child) not in self._skipped:
                    self._skipped.add((prefix, child))
                    log.warning("registry: %s%s left out of listings: %s", prefix, child, e)
        return sorted(out)

    def entities(self) -> list[str]:
        return self._cached(("ls",), lambda: self._names(keys.entity_prefix(), "entity"))

    def projects(self, entity: str) -> list[str]:
        check_name(entity, "entity")
        return self._cached(
            ("ls", entity), lambda: self._names(keys.project_prefix(entity), "project")
        )

    def collections(self, entity: str, project: str) -> list[str]:
        check_name(entity, "entity")
        check_name(project, "project")
        prefix = keys.collections_prefix(entity, project)
        return self._cached(("ls", entity, project), lambda: self._names(prefix, "name"))

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

    # -- versions -------------------------------------------------------------------------------
    def all_versions(self, entity: str, project: str, name: str) -> dict[int, VersionRecord]:
        """Every version record of a collection by number, deleted ones included, from its
        listing index (listing.py: a few reads whatever the history's length). Each record is
        also cached on its own, so `version()` of a listed version costs nothing more."""

        def load() -> dict[int, VersionRecord]:
            records = VersionListing(self.store).records(entity, project, name)
            if self._mutable is not None:
                with self._lock:
                    for n, rec in records.items():
                        key = ("version", entity, project, name, n)
                        self._mutable[key] = None if rec.state == "DELETED" else rec
            return records

        return self._cached(("listing", entity, project, name), load)

    def version_numbers(self, entity: str, project: str, name: str) -> list[int]:
        """Committed (not deleted) version numbers of a collection, ascending."""
        records = self.all_versions(entity, project, name)
        return [n for n in sorted(records) if records[n].state != "DELETED"]

    def versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        records = self.all_versions(entity, project, name)
        return [records[n] for n in sorted(records) if records[n].state != "DELETED"]

    def version_or_none(self, entity: str, project: str, name: str, n: int) -> VersionRecord | None:
        """Version `n`'s record, or None when it does not exist or was deleted."""

        def load() -> VersionRecord | None:
            try:
                raw, etag = self.store.get(keys.version_key(entity, project, name, n))
            except ObjectNotFoundError:
                return None
            rec = VersionRecord.from_bytes(raw, etag)
            return None if rec.state == "DELETED" else rec

        return self._cached(("version", entity, project, name, n), load)

    def version(self, entity: str, project: str, name: str, n: int) -> VersionRecord:
        rec = self.version_or_none(entity, project, name, n)
        if rec is None:
            raise ArtifactNotFoundError(f"no version {entity}/{project}/{name}:v{n}")
        return rec

    # -- aliases --------------------------------------------------------------------------------
    def read_alias(self, key: str) -> tuple[int | None, str | None]:
        """(version, etag) of an alias record, read now (not cached); version None for a removed
        alias (its record is kept as `{"version": null}` so removal, too, is a compare-and-swap),
        etag None if the record does not exist."""
        try:
            data, etag = get_json(self.store, key)
        except ObjectNotFoundError:
            return None, None
        version = data.get("version")
        return (None if version is None else int(version)), etag

    def aliases(self, entity: str, project: str, name: str) -> dict[str, int]:
        """alias -> version number for one collection (`latest` included, resolved fresh)."""

        def load() -> dict[str, int]:
            prefix = keys.aliases_prefix(entity, project, name)
            out: dict[str, int] = {}
            for child in self.store.list_children(prefix):
                if not child.endswith(".json"):
                    continue
                try:
                    alias = keys.decode_alias(child[: -len(".json")])
                except ValueError:  # not a key encode_alias() wrote: not an alias
                    continue
                version, _ = self.read_alias(prefix + child)
                if version is not None:
                    out[alias] = version
            latest = self.latest_number(entity, project, name, out.get("latest"))
            if latest is None:
                out.pop("latest", None)
            else:
                out["latest"] = latest
            return {
                a: v
                for a, v in out.items()
                if a == "latest" or self.version_or_none(entity, project, name, v)
            }

        return self._cached(("aliases", entity, project, name), load)

    def version_aliases(self, record: VersionRecord) -> list[str]:
        amap = self.aliases(record.entity, record.project, record.name)
        return sorted(a for a, v in amap.items() if v == record.version)

    def latest_number(self, entity: str, project: str, name: str, hint: int | None) -> int | None:
        """The newest committed version: the `latest` record, rolled forward past any version a
        crashed writer created but did not get to announce, or the listing's maximum. Rolling
        forward probes a few numbers; a `latest` further behind asks the listing instead."""
        if hint is None or self.version_or_none(entity, project, name, hint) is None:
            numbers = self.version_numbers(entity, project, name)
            return numbers[-1] if numbers else None
        n = hint
        while self.store.head(keys.version_key(entity, project, name, n + 1)) is not None:
            n += 1
            if n - hint >= ROLL_FORWARD:
                numbers = self.version_numbers(entity, project, name)
                return numbers[-1] if numbers else None
        return n if self.version_or_none(entity, project, name, n) else hint

    def fresh_latest(self, entity: str, project: str, name: str) -> VersionRecord | None:
        """`latest` read from the store now: only its alias record (rolled forward past any
        unannounced version), not every alias, so a commit costs a handful of requests."""
        self.invalidate()
        hint, _ = self.read_alias(keys.alias_key(entity, project, name, "latest"))
        n = self.latest_number(entity, project, name, hint)
        return None if n is None else self.version(entity, project, name, n)

    # -- resolving names ------------------------------------------------------------------------
    def resolve(self, ref: ArtifactRef) -> VersionRecord:
        """`entity/project/name:alias|vN|digest` -> its version record (ArtifactNotFoundError)."""
        if not ref.entity or not ref.project:
            raise InvalidNameError(f"{ref} needs an entity and a project to resolve")
        alias = ref.alias or "latest"
        if not ref.name:
            return self._resolve_digest_anywhere(ref.entity, ref.project, alias)
        entity, project, name = ref.entity, ref.project, ref.name
        coll = self.collection(entity, project, name)
        for _ in range(MAX_RENAME_HOPS):  # a renamed collection's old name resolves to the new
            if coll.state != "RENAMED" or not coll.renamed_to:
                break
            name = coll.renamed_to
            coll = self.collection(entity, project, name)
        n = version_number(alias)
        if n is None and is_digest(alias):
            n = self._digest_version(entity, project, name, alias)
        if n is None:
            n = self.aliases(entity, project, name).get(alias)
        if n is None:
            what = f"no version with digest {alias}" if is_digest(alias) else f"no alias {alias!r}"
            raise self._missing(replace(ref, name=name), what)
        record = self.version_or_none(entity, project, name, n)
        if record is None:
            raise self._missing(replace(ref, name=name), f"no version v{n}")
        return record

    def _missing(self, ref: ArtifactRef, what: str, limit: int = 10) -> ArtifactNotFoundError:
        """The error for a name that does not resolve, saying what does exist (the newest
        `limit` versions and every alias), so the reader can correct the name at once."""
        e, p, n = ref.entity or "", ref.project or "", ref.name
        numbers = self.version_numbers(e, p, n)
        shown = ", ".join(f"v{x}" for x in numbers[-limit:]) or "none"
        if len(numbers) > limit:
            shown = f"..., {shown} ({len(numbers)} in all)"
        amap = self.aliases(e, p, n)
        aliases = ", ".join(f"{a} -> v{v}" for a, v in sorted(amap.items())) or "none"
        return ArtifactNotFoundError(
            f"{what} in {ref.qualified_name} (versions: {shown}; aliases: {aliases})"
        )

    def _digest_version(self, entity: str, project: str, name: str, digest: str) -> int | None:
        try:
            data, _ = get_json(self.store, keys.digest_key(entity, project, name, digest))
        except ObjectNotFoundError:
            return None
        return int(data["version"])

    def _resolve_digest_anywhere(self, entity: str, project: str, digest: str) -> VersionRecord:
        for name in self.collections(entity, project):
            n = self._digest_version(entity, project, name, digest)
            if n is not None and self.version_or_none(entity, project, name, n):
                return self.version(entity, project, name, n)
        raise ArtifactNotFoundError(f"no artifact with digest {digest} in {entity}/{project}")

    # -- manifests (immutable) ------------------------------------------------------------------
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
        _check_manifest_key(record)
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
        _check_manifest_key(record)
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

    def fetch_manifest_index(self, record: VersionRecord, dest: Path) -> bool:
        """Copy the prebuilt index of `record`'s manifest to `dest` (atomically); False when the
        version has none. The caller must check it (index_check.check_untrusted): it comes
        from the store, like a manifest, and gets the same path validation."""
        try:
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                self.store.download_to(keys.manifest_index_key(record.manifest_key), f)
        except ObjectNotFoundError:
            return False
        return True
