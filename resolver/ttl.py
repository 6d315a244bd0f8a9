"""The TTL sweep: tombstone versions whose time to live (W&B's `Artifact.ttl`) has passed.

A version's `ttl` (seconds, in its record) counts from its `created_at`, as in W&B. Expiry is
not checked at read time: a version stays readable until a sweep deletes it, like W&B's deletion
"shortly after" the TTL passes. The sweep deletes the way `Artifact.delete(delete_aliases=True)`
does: aliases go, the version is tombstoned (its number is never reused), `latest` falls back.
Its blobs stay until the garbage collector (`artifactfs gc`) finds them unreferenced.

One function, so any command (or a cron job through the CLI) can run it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class Expired:
    """A version past its TTL, and when it expired."""

    record: VersionRecord
    expired_at: datetime
    deleted: bool = False
    error: str | None = None


def expires_at(record: VersionRecord) -> datetime | None:
    """When `record` expires, or None if it has no TTL."""
    if not record.ttl:
        return None
    created = datetime.fromisoformat(record.created_at)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created + timedelta(seconds=record.ttl)


def expired_versions(
    registry: Registry,
    *,
    entity: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> Iterator[Expired]:
    """Every live version past its TTL, optionally within one entity or project."""
    now = now or datetime.now(timezone.utc)
    registry.invalidate()
    for ent in [entity] if entity else registry.entities():
        for proj in [project] if project else registry.projects(ent):
            for name in registry.collections(ent, proj):
                try:
                    versions = registry.versions(ent, proj, name)
                except ArtifactFSError:
                    continue  # not a collection (junk under the prefix) or gone meanwhile
                for record in versions:
                    when = expires_at(record)
                    if when is not None and when <= now:
                        yield Expired(record, when)


def sweep_ttl(
    registry: Registry,
    *,
    dry_run: bool = False,
    entity: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> list[Expired]:
    """Delete (or with `dry_run` only report) every version past its TTL; returns them. A
    version that cannot be deleted is reported with its error; the sweep goes on."""
    found = list(expired_versions(registry, entity=entity, project=project, now=now))
    if dry_run:
        return found
    for item in found:
        try:
            registry.delete_version(item.record)
            item.deleted = True
            log.info("ttl: deleted %s (expired %s)", item.record.full_name, item.expired_at)
        except ArtifactFSError as e:
            item.error = str(e)
            log.warning("ttl: could not delete %s: %s", item.record.full_name, e)
    return found
