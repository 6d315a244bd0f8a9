"""Garbage collection: remove the content no version references, never what a commit may use.

What becomes garbage: the blobs and manifest of a deleted version (once no other version shares
them), the uploads of a commit that crashed before its version record, unfinished uploads
(temporary files of the local store, S3 multipart uploads). The records themselves (versions,
tombstones, aliases, runs, listing pages) are never removed: version numbers are never reused.

Safety without locks (docs/SEMANTICS.md, "Garbage collection"), with G the grace period:
* an unreferenced object is removed only when it is older than G, by the store's clock, checked
  again (HEAD) just before its removal;
* a deleted version's content stays referenced for G after the deletion;
* every commit depends only on objects younger than G/2 while it runs: what it uploads is new,
  and what it reuses it writes again when older (registry/commit.py, `_reuse`), then checks
  again after its commit point; a commit must finish within G/2;
* a run removes nothing more than G/2 after it started reading the version records (it stops,
  and says so), so a commit it did not see started after that reading and depends only on
  objects that stay younger than G for the rest of the run.
So an object a commit depends on is never older than G while that commit is in flight, and once
its version record exists a later run sees the reference.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from artifactfs.errors import ArtifactFSError, ObjectNotFoundError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import ObjectInfo
from artifactfs.resolver.blockrecord import BlockDigestError, record_key
from artifactfs.resolver.manifest import Manifest, b64_to_hex
from artifactfs.resolver.manifest_check import MANIFEST_ERRORS
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry

log = logging.getLogger(__name__)

CONTENT_PREFIXES = ("blobs/", "manifests/", keys.BLOCK_DIGESTS)


class GcError(ArtifactFSError, ValueError):
    """Garbage collection cannot run safely (a manifest it cannot read, a grace period too
    short for the deadline)."""


@dataclass
class GcResult:
    dry_run: bool
    examined: int = 0
    """Content objects listed."""
    removed: int = 0
    removed_bytes: int = 0
    young: int = 0
    """Unreferenced objects kept because they are younger than the grace period."""
    uploads: int = 0
    """Unfinished uploads removed (or that would be)."""
    stopped_early: bool = False
    """The run reached half the grace period and stopped removing (run it again)."""
    missing: list[str] = field(default_factory=list)
    """Manifests that versions name but the store lacks (reported, never "repaired")."""

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        line = (
            f"gc: {verb} {self.removed} of {self.examined} objects "
            f"({_size(self.removed_bytes)}) and {self.uploads} unfinished upload(s); "
            f"kept {self.young} unreferenced object(s) younger than the grace period"
        )
        if self.stopped_early:
            line += "; stopped at half the grace period, run again for the rest"
        return line


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class GarbageCollector:
    """One run of garbage collection over a registry's store."""

    def __init__(
        self,
        registry: Registry,
        grace: float,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.registry = registry
        self.store = registry.store
        self.grace = grace
        self.dry_run = dry_run
        self.progress = progress

    # -- what is referenced ---------------------------------------------------------------------
    def referenced(self) -> tuple[set[str], list[str]]:
        """Keys of every manifest, manifest index and blob a version still needs (deleted ones
        within the grace period included), and the manifests found missing."""
        manifests: set[str] = set()
        block_records: set[str] = set()
        reg = self.registry
        for entity in reg.entities():
            for project in reg.projects(entity):
                for name in reg.collections(entity, project):
                    for record in reg.all_versions(entity, project, name).values():
                        if record.state != "DELETED" or self._recently_deleted(record):
                            manifests.add(record.manifest_key)
                            if record.block_digests is not None:
                                with contextlib.suppress(BlockDigestError):  # not a SHA-256
                                    block_records.add(record_key(record.block_digests))
        live = set(manifests) | block_records
        missing = []
        for key in sorted(manifests):
            live.add(keys.manifest_index_key(key))
            try:
                raw, _ = self.store.get(key)
            except ObjectNotFoundError:
                missing.append(key)
                continue
            try:
                manifest = Manifest.from_bytes(raw)
            except MANIFEST_ERRORS as e:
                raise GcError(
                    f"manifest {key} is invalid ({e}); gc cannot tell which blobs it needs, "
                    "so it removes nothing"
                ) from e
            live.update(keys.blob_key(b64_to_hex(e.digest)) for e in manifest if e.ref is None)
        return live, missing

    def _recently_deleted(self, r: VersionRecord) -> bool:
        """A tombstone younger than the grace period keeps its version's content: a mount or a
        draft that saw the version before the deletion may still be reading it."""
        info = self.store.head(keys.version_key(r.entity, r.project, r.name, r.version))
        return info is None or info.age is None or info.age < self.grace

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> GcResult:
        self.store.check_writable()
        result = GcResult(self.dry_run)
        started = time.monotonic()  # before the records are read: the G/2 rule counts from here
        live, result.missing = self.referenced()
        for key in result.missing:
            log.warning("gc: a version names manifest %s, which the store does not hold", key)
        candidates: list[ObjectInfo] = []
        for prefix in CONTENT_PREFIXES:
            for info in self.store.list_info(prefix):
                result.examined += 1
                if info.key not in live:
                    candidates.append(info)
        for info in candidates:
            if self.progress:
                self.progress(1)
            if time.monotonic() - started > self.grace / 2:
                result.stopped_early = True
                break
            if not self._old(info):
                result.young += 1
                continue
            if not self.dry_run:
                current = self.store.head(info.key)  # again, just before: a commit may reuse it
                if current is None:
                    continue
                if not self._old(current):
                    result.young += 1
                    continue
                self.store.delete(info.key)
            result.removed += 1
            result.removed_bytes += info.size
        if not result.stopped_early:
            if self.dry_run:
                result.uploads = sum(1 for _ in self.store.stale_uploads(self.grace))
            else:
                result.uploads = self.store.abort_stale_uploads(self.grace)
        log.info("%s", result.summary())
        return result

    def _old(self, info: ObjectInfo) -> bool:
        return info.age is not None and info.age > self.grace
