"""Lineage: runs, which run used which version, and links of versions into other collections.

Apart from the version writer because none of this decides what a version *is*: run records and
use records are written once and never coordinated (a run writes its own record; a use is a
create-only marker per run), and a link is an ordinary commit elsewhere whose `source` points
back, deduplicated by that source (a create-only link record per source) rather than by digest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from artifactfs.errors import ArtifactNotFoundError, ObjectNotFoundError, PreconditionFailedError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.names import check_alias
from artifactfs.resolver.records import LinkRecord, RunRecord, VersionRecord
from artifactfs.resolver.registry.aliases import MAX_RACE_RETRIES, AliasWriter
from artifactfs.resolver.registry.commit import VersionWriter
from artifactfs.resolver.registry.reads import RegistryReader, get_json

log = logging.getLogger(__name__)


class Lineage:
    """Runs, use records and links of one store's registry."""

    def __init__(
        self, store: Store, reader: RegistryReader, aliases: AliasWriter, writer: VersionWriter
    ) -> None:
        self.store = store
        self.reader = reader
        self.aliases = aliases
        self.writer = writer

    # -- links ----------------------------------------------------------------------------------
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
        its aliases change), so promotion scripts can be re-run safely.

        Which portfolio version links a source is decided by a create-only link record
        (`links/<source id>.json`): concurrent links of one source may each commit a version,
        but only the one the record names survives; the others are tombstoned at once."""
        alias_list = [a for a in dict.fromkeys(aliases) if a != "latest"]
        for a in alias_list:
            check_alias(a)
        source = record.link_source or {
            "entity": record.entity,
            "project": record.project,
            "name": record.name,
            "version": record.version,
            "id": record.id,
        }
        key = keys.link_key(entity, project, name, source["id"])
        known, etag = self._link_target(key, entity, project, name)
        if known is None and etag is None:
            known = self._legacy_link(source["id"], entity, project, name)
            if known is not None:
                known = self._claim(key, known, None)
        if known is not None:
            self.aliases.apply(known, alias_list)
            return known
        committed = self.writer.commit(
            entity,
            project,
            name,
            record.type,
            self.reader.manifest(record),
            description=record.description,
            metadata=record.metadata,
            aliases=alias_list,
            run_id=record.logged_by,
            source=source,
            dedup_latest=False,
            inherit=[record],
        )
        winner = self._claim(key, committed, etag)
        if winner.version != committed.version:
            log.info("%s lost a concurrent link to %s; removed", committed.full_name, winner)
            self.writer.delete_version(committed)
            self.aliases.apply(winner, alias_list)
            return winner
        self._mark_source(source, winner)
        return winner

    def _link_target(
        self, key: str, entity: str, project: str, name: str
    ) -> tuple[VersionRecord | None, str | None]:
        """(the linked version if the record names a live one, the record's etag or None)."""
        try:
            raw, etag = self.store.get(key)
        except ObjectNotFoundError:
            return None, None
        link = LinkRecord.from_bytes(raw, etag)
        if link.version is None:
            return None, etag
        return self.reader.version_or_none(entity, project, name, link.version), etag

    def _legacy_link(
        self, source_id: str, entity: str, project: str, name: str
    ) -> VersionRecord | None:
        """A version linking `source_id` without a link record: made before link records, or
        by a linker that crashed between its commit and its record."""
        try:
            self.reader.collection(entity, project, name)
            existing = self.reader.versions(entity, project, name)
        except ArtifactNotFoundError:
            return None
        for linked in existing:
            if linked.link_source and linked.link_source["id"] == source_id:
                return linked
        return None

    def _claim(self, key: str, candidate: VersionRecord, etag: str | None) -> VersionRecord:
        """Make the link record name `candidate` (create-only, or a swap of a removed link);
        when another linker won, the version its record names."""
        source_id = (candidate.link_source or {}).get("id", "")
        body = LinkRecord(source_id=source_id, version=candidate.version).to_bytes()
        for _ in range(MAX_RACE_RETRIES):
            try:
                if etag is None:
                    self.store.create(key, body)
                else:
                    self.store.swap(key, body, etag)
                return candidate
            except PreconditionFailedError:
                won, etag = self._link_target(
                    key, candidate.entity, candidate.project, candidate.name
                )
                if won is not None:
                    return won
        raise PreconditionFailedError(f"could not record the link of {candidate.full_name}")

    def _mark_source(self, source: dict[str, Any], linked: VersionRecord) -> None:
        """Remember on the source version where it is linked (for `linked_artifacts`)."""
        key = keys.linked_to_key(
            source["entity"],
            source["project"],
            source["name"],
            int(source["version"]),
            (linked.entity, linked.project, linked.name),
        )
        body = json.dumps({"version": linked.version}).encode()
        try:
            self.store.create(key, body)
        except PreconditionFailedError:
            _, etag = self.store.get(key)
            self.store.swap(key, body, etag)

    def unlink(self, linked: VersionRecord) -> None:
        """Remove a portfolio version that links a source: its link record is swapped to
        removed, the version tombstoned, and the source's marker cleared."""
        source = linked.link_source
        if not source:
            raise ValueError(f"{linked.full_name} is not a linked artifact")
        key = keys.link_key(linked.entity, linked.project, linked.name, source["id"])
        body = LinkRecord(source_id=source["id"], version=None).to_bytes()
        try:
            _, etag = self.store.get(key)
            self.store.swap(key, body, etag)
        except (ObjectNotFoundError, PreconditionFailedError):
            pass  # a legacy link without a record, or relinked meanwhile: the tombstone decides
        self.writer.delete_version(linked)
        marker = keys.linked_to_key(
            source["entity"],
            source["project"],
            source["name"],
            int(source["version"]),
            (linked.entity, linked.project, linked.name),
        )
        try:
            _, etag = self.store.get(marker)
            self.store.swap(marker, json.dumps({"version": None}).encode(), etag)
        except (ObjectNotFoundError, PreconditionFailedError):
            pass

    def linked(self, record: VersionRecord) -> list[VersionRecord]:
        """The live portfolio versions that link `record` (a source version)."""
        prefix = keys.linked_to_prefix(record.entity, record.project, record.name, record.version)
        out = []
        for key in sorted(self.store.list(prefix)):
            parts = key[len(prefix) :].removesuffix(".json").split("/")
            if len(parts) != 3:
                continue
            try:
                data, _ = get_json(self.store, key)
            except ObjectNotFoundError:
                continue
            if data.get("version") is None:
                continue
            found = self.reader.version_or_none(parts[0], parts[1], parts[2], int(data["version"]))
            if found is not None:
                out.append(found)
        return out

    # -- runs -----------------------------------------------------------------------------------
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
                ref, _ = get_json(self.store, prefix + child)
            except ObjectNotFoundError:
                continue
            run = self.run(ref["entity"], ref["project"], ref["id"])
            if run is not None:
                out.append(run)
        return out
