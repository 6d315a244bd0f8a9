"""Lineage: runs, which run used which version, and links of versions into other collections.

Apart from the version writer because none of this decides what a version *is*: run records and
use records are written once and never coordinated (a run writes its own record; a use is a
create-only marker per run), and a link is an ordinary commit elsewhere whose `source` points
back, deduplicated by that source rather than by digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from artifactfs.errors import ArtifactNotFoundError, ObjectNotFoundError, PreconditionFailedError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.names import check_alias
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.registry.aliases import AliasWriter
from artifactfs.resolver.registry.commit import VersionWriter
from artifactfs.resolver.registry.reads import RegistryReader, get_json


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
            self.reader.collection(entity, project, name)
            existing = self.reader.versions(entity, project, name)
        except ArtifactNotFoundError:
            existing = []
        for linked in existing:
            if linked.source and linked.source.get("id") == source["id"]:
                self.aliases.apply(linked, alias_list)
                return linked
        return self.writer.commit(
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
        )

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
