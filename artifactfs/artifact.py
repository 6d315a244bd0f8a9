"""The Artifact: a W&B-style versioned set of files (spec/artifact-api.md).

An Artifact starts PENDING and local: `add_*` calls build its manifest (nothing is uploaded
yet). `Run.log_artifact` commits it through the registry and attaches the resulting version
record; from then on it is COMMITTED and its contents are final, while description, metadata and
aliases can still change through `save()`. Artifacts obtained from `use_artifact`/`Api` start
attached. All reads go through the Resolver, i.e. the shared blob cache.

The class is assembled in layers so that each part has a room: artifact_core.py holds the state
and attributes, artifact_content.py the building of a PENDING artifact, artifact_entry.py the
entries handed out; this module is the Artifact itself: becoming a logged version, reading it
(download, checkout, verify, get), the registry operations (save, delete, link) and lineage
(logged_by, used_by). It logs itself through a `RunSession` (session.py) and answers lineage with
the public run view (public_run.py), neither of which imports it back.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from artifactfs.artifact_content import ArtifactContent
from artifactfs.artifact_entry import ArtifactManifestEntry
from artifactfs.public_run import Run as PublicRun
from artifactfs.resolver.download import (
    DownloadResult,
    Progress,
    checkout_manifest,
    download_manifest,
    verify_dir,
)
from artifactfs.resolver.names import check_alias, check_entry_path, check_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import check_metadata
from artifactfs.resolver.resolver import Resolver
from artifactfs.session import RunSession, auto_run
from artifactfs.table import SUFFIX as TABLE_SUFFIX
from artifactfs.table import Table, table_path

__all__ = ["Artifact", "ArtifactManifestEntry"]

log = logging.getLogger(__name__)


class Artifact(ArtifactContent):
    """A versioned set of files with a type, description, metadata and aliases."""

    # -- construction from the registry ----------------------------------------------------------
    @classmethod
    def _from_record(cls, record: VersionRecord, resolver: Resolver) -> Artifact:
        art = cls.__new__(cls)
        Artifact.__init__(art, record.name, record.type, record.description, record.metadata)
        art._attach(record, resolver)
        return art

    def _attach(self, record: VersionRecord, resolver: Resolver) -> None:
        """Become the logged version `record`: final, with its manifest and aliases."""
        self._record = record
        self._resolver = resolver
        self._name = record.name
        self._type = record.type
        self._entity, self._project = record.entity, record.project
        self._description = record.description
        self._metadata = dict(record.metadata)
        self._manifest = resolver.registry.manifest(record)
        self._aliases = resolver.registry.version_aliases(record)
        self._final = True
        self._cleanup_tmp()

    def _log_by(
        self,
        run: RunSession,
        entity: str,
        project: str,
        aliases: list[str],
        progress: Progress | None = None,
    ) -> None:
        """Commit this artifact as `run`'s output under `entity/project` and become that version
        (the caller checked the arguments). Contents identical to `latest` create no version:
        this artifact becomes the existing `latest` and the run records nothing."""
        record = run.resolver.registry.commit(
            entity,
            project,
            self._name,
            self.type,
            self.manifest,
            description=self.description,
            metadata=self.metadata,
            aliases=aliases,
            run_id=run.id,
            progress=progress,
        )
        self._attach(record, run.resolver)
        if record.logged_by == run.id:
            run._remember("logged", record)
        else:
            log.info("%s is unchanged; logged nothing new", record.full_name)

    # -- reading contents (logged artifacts) -----------------------------------------------------
    def get_path(self, name: str) -> ArtifactManifestEntry:
        self._ensure_logged("get_path")
        entry = self._manifest.get(check_entry_path(name))
        if entry is None:
            raise KeyError(f"path {name!r} is not in artifact {self.name}")
        return ArtifactManifestEntry.of(entry, self)

    def get(self, name: str) -> Table | None:
        """The Table stored at `name` (or `name.table.json`); None if there is none."""
        self._ensure_logged("get")
        path = check_entry_path(name)
        entry = self._manifest.get(path) or self._manifest.get(table_path(path))
        if entry is None or not entry.path.endswith(TABLE_SUFFIX):
            return None
        resolver = self._resolver_or_raise()
        with open(resolver.fetch(entry), "rb") as f:
            return Table.from_json(json.load(f))

    def __getitem__(self, name: str) -> Table | None:
        return self.get(name)

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        recursive: bool = False,
        *,
        progress: Progress | None = None,
    ) -> str:
        """Copy the files into `root` (default ./artifacts/<name>:vN) through the cache; other
        files in `root` are left alone. `recursive` is accepted for W&B compatibility: entries
        added from other artifacts are stored by digest, so they always come along."""
        resolver = self._resolver_or_raise()
        target = Path(root) if root is not None else self._default_root()
        result: DownloadResult = download_manifest(
            resolver, self._manifest, target, progress=progress
        )
        return str(result.root)

    def checkout(
        self, root: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> str:
        """Make `root` hold exactly this artifact: DELETES files that are not part of it."""
        resolver = self._resolver_or_raise()
        target = Path(root) if root is not None else self._default_root()
        return str(checkout_manifest(resolver, self._manifest, target, progress=progress).root)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """ValueError unless `root` holds exactly this artifact's files (references skipped)."""
        self._ensure_logged("verify")
        verify_dir(self._manifest, Path(root) if root is not None else self._default_root())

    # -- registry operations ---------------------------------------------------------------------
    def save(self, project: str | None = None, settings: Any = None) -> None:
        """Persist description, metadata and alias changes of a logged artifact; an unlogged
        one is logged, by the current run or else by an automatic run (W&B behaviour)."""
        if self._record is None:
            with auto_run(RunSession, project) as run:
                self._log_by(run, run.entity, run.project, ["latest"])
            return
        resolver = self._resolver_or_raise()
        for alias in self._aliases:
            if alias != "latest":
                check_alias(alias)
        metadata = check_metadata(self._metadata)
        reg = resolver.registry
        reg.invalidate()
        fresh = reg.version(self._record.entity, self._record.project, self._record.name,
                            self._record.version)  # fmt: skip
        if fresh.description != self._description or fresh.metadata != metadata:
            fresh.description = self._description
            fresh.metadata = metadata
            fresh = reg.update_version(fresh)
        self._aliases = reg.set_aliases(fresh, self._aliases)
        self._record = fresh

    def wait(self, timeout: int | None = None) -> Artifact:
        """Logging is synchronous here, so a logged artifact is always ready."""
        self._ensure_logged("wait")
        return self

    def delete(self) -> None:
        """Tombstone this version: it disappears from listings, its aliases are removed."""
        resolver = self._resolver_or_raise()
        assert self._record is not None
        resolver.registry.delete_version(self._record)
        self._aliases = []
        self._deleted = True

    def link(self, target_path: str, aliases: list[str] | None = None) -> None:
        """Link this version into a portfolio `{portfolio}`, `{project}/{portfolio}` or
        `{entity}/{project}/{portfolio}`; re-linking the same version only updates aliases."""
        resolver = self._resolver_or_raise()
        assert self._record is not None
        parts = target_path.split("/")
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"invalid link target {target_path!r}")
        entity = parts[-3] if len(parts) == 3 else self._record.entity
        project = parts[-2] if len(parts) >= 2 else self._record.project
        check_name(entity, "entity")
        check_name(project, "project")
        check_name(parts[-1], "portfolio name")
        resolver.registry.link(self._record, entity, project, parts[-1], aliases or [])

    def logged_by(self) -> PublicRun[Artifact] | None:
        rec = self._ensure_logged("logged_by")
        resolver = self._resolver_or_raise()
        if not rec.logged_by:
            return None
        run = resolver.registry.run(rec.entity, rec.project, rec.logged_by)
        if run is None and rec.source:
            run = resolver.registry.run(rec.source["entity"], rec.source["project"], rec.logged_by)
        return PublicRun(run, resolver, Artifact._from_record) if run is not None else None

    def used_by(self) -> list[PublicRun[Artifact]]:
        rec = self._ensure_logged("used_by")
        resolver = self._resolver_or_raise()
        return [PublicRun(r, resolver, Artifact._from_record) for r in resolver.registry.users(rec)]

    def json_encode(self) -> dict[str, Any]:
        """W&B's reference form of a logged artifact (used when an artifact is put in a config)."""
        self.wait()
        return {
            "_type": "artifactVersion",
            "_version": "v0",
            "id": self.id,
            "version": self.source_version,
            "sequenceName": self.source_name.split(":")[0],
            "usedAs": self._use_as,
        }

    def __repr__(self) -> str:
        return f"<Artifact {self.qualified_name if self._record else self._name} ({self.type})>"
