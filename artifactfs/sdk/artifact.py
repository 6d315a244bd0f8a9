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
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from artifactfs.errors import ArtifactFSError, ArtifactHasAliasesError
from artifactfs.resolver.download import (
    DownloadResult,
    Progress,
    checkout_manifest,
    download_manifest,
    verify_dir,
)
from artifactfs.resolver.manifest import Manifest
from artifactfs.resolver.names import check_alias, check_entry_path, check_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import check_metadata
from artifactfs.resolver.resolver import Resolver
from artifactfs.sdk.artifact_content import ArtifactContent
from artifactfs.sdk.artifact_core import check_tags
from artifactfs.sdk.artifact_entry import ArtifactFile, ArtifactManifestEntry
from artifactfs.sdk.public_collections import ArtifactCollection
from artifactfs.sdk.public_run import Run as PublicRun
from artifactfs.sdk.session import RunSession, auto_run
from artifactfs.sdk.table import SUFFIX as TABLE_SUFFIX
from artifactfs.sdk.table import Table, table_path

__all__ = ["Artifact", "ArtifactFile", "ArtifactManifestEntry"]

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
        self._saved_aliases = list(self._aliases)
        self._tags = list(record.tags)
        self._ttl = timedelta(seconds=record.ttl) if record.ttl else None
        self._ttl_changed = False
        self._pending_tags = None
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
        ttl, ttl_changed, tags = self._ttl, self._ttl_changed, self._pending_tags
        if ttl_changed or tags:
            record.ttl = int(ttl.total_seconds()) if ttl is not None else None
            record.tags = list(dict.fromkeys([*record.tags, *check_tags(tags or [])]))
            record = run.resolver.registry.update_version(record)
        self._attach(record, run.resolver)
        if record.logged_by == run.id:
            run._remember("logged", record)
        else:
            log.info("%s is unchanged; logged nothing new", record.full_name)

    # -- drafts of a logged version --------------------------------------------------------------
    def new_draft(self) -> Artifact:
        """A PENDING copy of this version's contents, description and metadata that logs as
        the next version of the collection it came from (W&B's incremental artifact): add,
        remove or replace entries, then `log_artifact()` or `save()`. Unchanged entries are
        not uploaded again (their blobs are already in the registry)."""
        rec = self._ensure_logged("new_draft")
        source = rec.link_source or {"entity": rec.entity, "project": rec.project, "name": rec.name}
        draft = Artifact(str(source["name"]), self.type, self.description, dict(self.metadata))
        draft._entity = str(source["entity"])
        draft._project = str(source["project"])
        draft._base_id = rec.id
        draft._manifest = Manifest.from_bytes(self._manifest.to_bytes())
        return draft

    # -- reading contents (logged artifacts) -----------------------------------------------------
    def get_entry(self, name: str) -> ArtifactManifestEntry:
        """The entry at `name` (or the Table stored as `name`), KeyError if there is none."""
        self._ensure_logged("get_entry")
        path = check_entry_path(name)
        entry = self._manifest.get(path) or self._manifest.get(table_path(path))
        if entry is None:
            raise KeyError(f"Path not contained in artifact: {name}")
        return ArtifactManifestEntry.of(entry, self)

    def get_path(self, name: str) -> ArtifactManifestEntry:
        """W&B's older name of `get_entry`."""
        return self.get_entry(name)

    def files(self, names: Sequence[str] | None = None, per_page: int = 50) -> list[ArtifactFile]:
        """The artifact's files (or just `names`), as W&B's public `File` objects."""
        self._ensure_logged("files")
        wanted = None if names is None else {check_entry_path(n) for n in names}
        return [
            ArtifactFile(self, e.path)
            for e in sorted(self._manifest, key=lambda e: e.path)
            if wanted is None or e.path in wanted
        ]

    def file(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download the one file of a single-file artifact; returns its path (ValueError for
        an artifact of several files)."""
        self._ensure_logged("file")
        if len(self._manifest) > 1:
            raise ValueError(
                "This artifact contains more than one file, call `.download()` to get "
                'all files or call .get_entry("filename").download()'
            )
        if not len(self._manifest):
            raise ValueError(f"artifact {self.name} holds no file")
        entry = next(iter(self._manifest))
        return self.get_entry(entry.path).download(root)

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
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | os.PathLike[str] | None = None,
        multipart: bool | None = None,
        *,
        recursive: bool = False,
        progress: Progress | None = None,
    ) -> str:
        """Copy the files into `root` (default ./artifacts/<name>:vN) through the shared cache;
        other files in `root` are left alone. `path_prefix` limits it to paths under that
        prefix; `allow_missing_references` skips references whose objects are gone instead of
        failing. `skip_cache=True` writes straight into `root` without filling the shared cache
        (as W&B does; also the automatic fallback when the cache disk is full). `multipart` and
        `recursive` are accepted for W&B compatibility (entries added from other artifacts are
        stored by digest, so they always come along)."""
        resolver = self._resolver_or_raise()
        target = Path(root) if root is not None else self._default_root()
        prefix = str(path_prefix).replace(os.sep, "/") if path_prefix else ""
        entries = [e for e in self._manifest if e.path.startswith(prefix)]
        direct = bool(skip_cache)
        if not allow_missing_references:
            paths = None if not prefix else [e.path for e in entries]
            result: DownloadResult = download_manifest(
                resolver, self._manifest, target, paths=paths, progress=progress, skip_cache=direct
            )
            return str(result.root)
        plain = [e.path for e in entries if e.ref is None]
        result = download_manifest(
            resolver, self._manifest, target, paths=plain, progress=progress, skip_cache=direct
        )
        for entry in (e for e in entries if e.ref is not None):
            try:
                download_manifest(
                    resolver, self._manifest, target, paths=[entry.path], skip_cache=direct
                )
            except ArtifactFSError as e:
                log.warning("skipping missing reference %s (%s): %s", entry.path, entry.ref, e)
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
        """Persist description, metadata, aliases, tags and ttl of a logged artifact; an
        unlogged one is logged, by the current run or else by an automatic run (W&B
        behaviour; a draft of a logged version goes to the collection it came from).

        Aliases: what was added to or removed from the list since it was read is applied
        (W&B's rule), for every alias but `latest`, which the registry manages (always the
        newest version): removing it from, or adding it to, the list changes nothing, with a
        warning."""
        if self._record is None:
            with auto_run(RunSession, project or self._project) as run:
                self._log_by(
                    run, self._entity or run.entity, self._project or run.project, ["latest"]
                )
            return
        resolver = self._resolver_or_raise()
        for alias in self._aliases:
            if alias != "latest":
                check_alias(alias)
        metadata = check_metadata(self._metadata)
        tags = check_tags(self._tags)
        reg = resolver.registry
        reg.invalidate()
        fresh = reg.version(self._record.entity, self._record.project, self._record.name,
                            self._record.version)  # fmt: skip
        ttl = int(self._ttl.total_seconds()) if self._ttl is not None else None
        if (
            fresh.description != self._description
            or fresh.metadata != metadata
            or fresh.tags != tags
            or (self._ttl_changed and fresh.ttl != ttl)
        ):
            fresh.description = self._description
            fresh.metadata = metadata
            fresh.tags = tags
            if self._ttl_changed:
                fresh.ttl = ttl
            fresh = reg.update_version(fresh)
        # W&B sends the changes made to the list since it was read, not the list: an alias that
        # moved to another version meanwhile (a later log_artifact) is not pulled back.
        added = [a for a in dict.fromkeys(self._aliases) if a not in self._saved_aliases]
        removed = [a for a in self._saved_aliases if a not in self._aliases]
        if "latest" in added or "latest" in removed:
            message = (
                "'latest' is managed by the registry (it always names the newest version); "
                f"{'removing it from' if 'latest' in removed else 'adding it to'} "
                f"{fresh.full_name} changes nothing"
            )
            warnings.warn(message, UserWarning, stacklevel=2)
            log.warning("%s", message)
        for alias in added:
            if alias != "latest":
                reg.set_alias(fresh, alias)
        for alias in removed:
            if alias != "latest":
                reg.remove_alias(fresh, alias)
        reg.invalidate()
        self._aliases = reg.version_aliases(fresh)
        self._saved_aliases = list(self._aliases)
        self._record = fresh
        self._tags = list(fresh.tags)
        self._ttl_changed = False

    def wait(self, timeout: int | None = None) -> Artifact:
        """Logging is synchronous here, so a logged artifact is always ready."""
        self._ensure_logged("wait")
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Tombstone this version: it disappears from listings, its aliases are removed. As in
        W&B, a version with aliases (`latest` counts) is refused unless `delete_aliases=True`;
        deleting a linked artifact only removes the link (`unlink()`)."""
        resolver = self._resolver_or_raise()
        assert self._record is not None
        if self.is_link:
            self.unlink()
            return
        registry = resolver.registry
        registry.invalidate()
        aliases = registry.version_aliases(self._record)
        if aliases and not delete_aliases:
            raise ArtifactHasAliasesError(
                f"cannot delete {self._record.full_name}: it has aliases {aliases}; "
                "pass delete_aliases=True to delete them with it"
            )
        registry.delete_version(self._record)
        self._aliases = []
        self._deleted = True

    def unlink(self) -> None:
        """Remove this linked version from its portfolio (the source version stays)."""
        rec = self._ensure_logged("unlink")
        if not self.is_link:
            raise ValueError(
                f"Artifact {self.qualified_name!r} is not a linked artifact and cannot be "
                "unlinked. To delete it, use 'delete' instead."
            )
        self._resolver_or_raise().registry.unlink(rec)
        self._aliases = []
        self._deleted = True

    def link(self, target_path: str, aliases: Sequence[str] | None = None) -> Artifact:
        """Link this version into a portfolio `{portfolio}`, `{project}/{portfolio}` or
        `{entity}/{project}/{portfolio}` (W&B's `wandb-registry-<name>/<collection>` is such a
        `{project}/{portfolio}`) and return the linked version; re-linking the same version
        only updates aliases. An unlogged artifact is logged first (W&B behaviour)."""
        if self._record is None:
            self.save()
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
        if isinstance(aliases, str):
            aliases = [aliases]
        linked = resolver.registry.link(self._record, entity, project, parts[-1], aliases or [])
        return Artifact._from_record(linked, resolver)

    # -- the collection and links ----------------------------------------------------------------
    @property
    def collection(self) -> ArtifactCollection[Artifact]:
        """The collection this version was fetched from (a portfolio for a linked one)."""
        rec = self._ensure_logged("collection")
        return ArtifactCollection(
            self._resolver_or_raise(), rec.entity, rec.project, rec.name, None,
            Artifact._from_record,
        )  # fmt: skip

    @property
    def source_collection(self) -> ArtifactCollection[Artifact]:
        self._ensure_logged("source_collection")
        return ArtifactCollection(
            self._resolver_or_raise(), self.source_entity, self.source_project,
            self.source_name.split(":")[0], None, Artifact._from_record,
        )  # fmt: skip

    @property
    def source_artifact(self) -> Artifact:
        """The source version of a linked artifact; a source version itself otherwise."""
        rec = self._ensure_logged("source_artifact")
        if rec.link_source is None:
            return self
        resolver = self._resolver_or_raise()
        s = rec.link_source
        try:
            source = resolver.registry.version(s["entity"], s["project"], s["name"], s["version"])
        except ArtifactFSError as e:
            raise ValueError(f"unable to fetch the source artifact of {self.name}: {e}") from e
        return Artifact._from_record(source, resolver)

    @property
    def linked_artifacts(self) -> list[Artifact]:
        """The portfolio versions that link this source version (empty for a linked one)."""
        rec = self._ensure_logged("linked_artifacts")
        if rec.link_source is not None:
            return []
        resolver = self._resolver_or_raise()
        return [Artifact._from_record(r, resolver) for r in resolver.registry.linked(rec)]

    def logged_by(self) -> PublicRun[Artifact] | None:
        rec = self._ensure_logged("logged_by")
        resolver = self._resolver_or_raise()
        if not rec.logged_by:
            return None
        run = resolver.registry.run(rec.entity, rec.project, rec.logged_by)
        src = rec.link_source
        if run is None and src:
            run = resolver.registry.run(src["entity"], src["project"], rec.logged_by)
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
