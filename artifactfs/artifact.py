"""The Artifact: a W&B-style versioned set of files (spec/artifact-api.md).

An Artifact starts PENDING and local: `add_*` calls build its manifest (nothing is uploaded
yet). `Run.log_artifact` commits it through the registry and attaches the resulting version
record; from then on it is COMMITTED and its contents are final, while description, metadata and
aliases can still change through `save()`. Artifacts obtained from `use_artifact`/`Api` start
attached. All reads go through the Resolver, i.e. the shared blob cache.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

from artifactfs.config import load_config
from artifactfs.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    InvalidPathError,
)
from artifactfs.resolver.download import (
    DownloadResult,
    Progress,
    checkout_manifest,
    download_manifest,
    verify_dir,
)
from artifactfs.resolver.manifest import Manifest, ManifestEntry, b64_to_hex, md5_b64_of_file
from artifactfs.resolver.names import check_alias, check_entry_path, check_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import check_metadata
from artifactfs.table import SUFFIX as TABLE_SUFFIX
from artifactfs.table import Table, table_path

if TYPE_CHECKING:
    from artifactfs.api import Run as PublicRun
    from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)


def default_artifact_dir() -> Path:
    """W&B downloads to ./artifacts/<name>:<version>; the base is the `artifact_dir` setting."""
    return load_config().artifact_dir


class ArtifactManifestEntry(ManifestEntry):
    """A manifest entry that knows its artifact, so `get_path(...).download()` works."""

    _artifact: Artifact | None = None

    @classmethod
    def of(cls, entry: ManifestEntry, artifact: Artifact | None) -> ArtifactManifestEntry:
        out = cls(
            path=entry.path,
            digest=entry.digest,
            size=entry.size,
            ref=entry.ref,
            extra=dict(entry.extra),
            birth_artifact_id=entry.birth_artifact_id,
            local_path=entry.local_path,
        )
        out._artifact = artifact
        return out

    def _logged(self) -> Artifact:
        if self._artifact is None or self._artifact._record is None:
            raise ArtifactNotLoggedError(f"{self.path}: its artifact has not been logged")
        return self._artifact

    def download(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download this one file (through the cache) under `root`; return its local path."""
        art = self._logged()
        base = Path(root) if root is not None else art._default_root()
        download_manifest(art._resolver_or_raise(), art._manifest, base, paths=[self.path])
        return str(Path(base).absolute() / self.path)

    def ref_url(self) -> str:
        """The reference URI for references; else a URL naming this file of this version."""
        if self.ref is not None:
            return self.ref
        art = self._logged()
        return f"artifactfs-artifact://{art.id}/{self.path}"


class Artifact:
    """A versioned set of files with a type, description, metadata and aliases."""

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool | None = None,
        use_as: str | None = None,
    ) -> None:
        self._name = check_name(name, "artifact name")
        self._type = check_name(type, "type")
        self._description = description
        self._metadata = check_metadata(metadata)
        self.incremental = bool(incremental)
        self._use_as = use_as
        self._manifest = Manifest()
        self._aliases: list[str] = []
        self._final = False
        self._record: VersionRecord | None = None
        self._resolver: Resolver | None = None
        self._entity: str | None = None
        self._project: str | None = None
        self._added_local_paths: dict[str, str] = {}
        self._tmpdir: str | None = None
        self._deleted = False

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

    def _cleanup_tmp(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def _tmp(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="artifactfs-staging-")
        return self._tmpdir

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._cleanup_tmp()

    # -- guards ----------------------------------------------------------------------------------
    def _ensure_can_add(self) -> None:
        if self._final:
            raise ArtifactFinalizedError(
                f"artifact {self.name} is finalized; create a new Artifact to change its contents"
            )

    def _ensure_logged(self, what: str) -> VersionRecord:
        if self._record is None:
            raise ArtifactNotLoggedError(
                f"{what} needs a logged artifact; log {self._name} with run.log_artifact() first"
            )
        return self._record

    def _resolver_or_raise(self) -> Resolver:
        self._ensure_logged("this operation")
        assert self._resolver is not None
        return self._resolver

    # -- attributes ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """`collection:vN` once logged, the bare collection name before."""
        if self._record is None:
            return self._name
        return f"{self._record.name}:v{self._record.version}"

    @property
    def type(self) -> str:
        return self._type

    @property
    def entity(self) -> str | None:
        return self._entity

    @property
    def project(self) -> str | None:
        return self._project

    @property
    def qualified_name(self) -> str:
        return f"{self._entity}/{self._project}/{self._name}"

    @property
    def version(self) -> str:
        return f"v{self._ensure_logged('version').version}"

    @property
    def _source(self) -> dict[str, Any] | None:
        return self._record.source if self._record is not None else None

    @property
    def source_entity(self) -> str | None:
        return self._source["entity"] if self._source else self._entity

    @property
    def source_project(self) -> str | None:
        return self._source["project"] if self._source else self._project

    @property
    def source_name(self) -> str:
        if self._source:
            return f"{self._source['name']}:v{self._source['version']}"
        return self.name

    @property
    def source_qualified_name(self) -> str:
        if self._source:
            s = self._source
            return f"{s['entity']}/{s['project']}/{s['name']}"
        return self.qualified_name

    @property
    def source_version(self) -> str:
        if self._source:
            return f"v{self._source['version']}"
        return self.version

    @property
    def id(self) -> str | None:
        return self._record.id if self._record is not None else None

    @property
    def commit_hash(self) -> str:
        """MD5 (hex) of the committed manifest JSON: names exactly what was committed."""
        rec = self._ensure_logged("commit_hash")
        return rec.manifest_key.rsplit("/", 2)[-2] + rec.manifest_key.rsplit("/", 1)[-1][:-5]

    @property
    def digest(self) -> str:
        return self._manifest.digest()

    @property
    def size(self) -> int:
        return self._manifest.size

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def state(self) -> str:
        if self._deleted:
            return "DELETED"
        return "PENDING" if self._record is None else "COMMITTED"

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = value

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = check_metadata(value)

    @property
    def aliases(self) -> list[str]:
        """Mutable: edit the list, then `save()` persists the difference."""
        return self._aliases

    @aliases.setter
    def aliases(self, value: Sequence[str]) -> None:
        self._aliases = list(value)

    @property
    def created_at(self) -> str | None:
        return self._record.created_at if self._record is not None else None

    # -- adding contents -------------------------------------------------------------------------
    def _put(self, entry: ManifestEntry) -> ArtifactManifestEntry:
        wrapped = ArtifactManifestEntry.of(entry, self)
        self._manifest.add(wrapped)
        return wrapped

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool | None = False,
    ) -> ArtifactManifestEntry:
        """Add one local file as `name` (default: its basename). With `is_tmp`, the part of the
        file name before the first dot becomes the first 20 hex chars of its MD5 (W&B's rule),
        so temporary files with colliding names do not overwrite each other."""
        self._ensure_can_add()
        local = os.fspath(local_path)
        if not os.path.isfile(local):
            raise ValueError(f"path is not a file: {local!r}")
        path = check_entry_path(name if name is not None else os.path.basename(local))
        digest = md5_b64_of_file(local)
        if is_tmp:
            head, base = posixpath.split(path)
            parts = base.split(".")
            parts[0] = b64_to_hex(digest)[:20]
            path = posixpath.join(head, ".".join(parts)) if head else ".".join(parts)
        entry = self._put(
            ManifestEntry(path, digest, os.path.getsize(local), local_path=os.path.abspath(local))
        )
        self._added_local_paths[os.path.abspath(local)] = path
        return entry

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None) -> None:
        """Add every file under `local_path`, at the root or under `name/`. All paths are
        validated before any is added, so a failure leaves the artifact unchanged."""
        self._ensure_can_add()
        local = os.fspath(local_path)
        if not os.path.isdir(local):
            raise ValueError(f"path is not a directory: {local!r}")
        prefix = check_entry_path(name) if name else ""
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(local, followlinks=True):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, local).replace(os.sep, "/")
                found.append((full, check_entry_path(f"{prefix}/{rel}" if prefix else rel)))
        for full, path in found:
            self.add_file(full, name=path)
        log.debug("added %d files from %s", len(found), local)

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "w", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a fresh file; it is added to the artifact as `name` when the block closes."""
        self._ensure_can_add()
        path = check_entry_path(name)
        if path in self._manifest:
            raise ValueError(f"file {path!r} already exists in artifact {self._name}")
        local = os.path.join(tempfile.mkdtemp(dir=self._tmp()), os.path.basename(path))
        with open(local, mode, encoding=encoding) as f:
            yield f
        self.add_file(local, name=path)

    def add(self, obj: Table, name: str) -> ArtifactManifestEntry:
        """Add a Table, stored as JSON at `name.table.json`."""
        self._ensure_can_add()
        if not isinstance(obj, Table):
            raise ValueError(f"cannot add a {type(obj).__name__}; only Table is supported")
        path = check_entry_path(table_path(name))
        local = os.path.join(tempfile.mkdtemp(dir=self._tmp()), posixpath.basename(path))
        with open(local, "wb") as f:
            f.write(obj.to_bytes())
        return self.add_file(local, name=path)

    def __setitem__(self, name: str, item: Table) -> ArtifactManifestEntry:
        return self.add(item, name)

    def add_reference(
        self,
        uri: ArtifactManifestEntry | ManifestEntry | str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ArtifactManifestEntry]:
        """Add entries whose bytes stay where they are (file://, http(s)://, s3://, gs://...).

        A URI naming one object becomes `name` (default: the URI's basename); a directory or
        prefix becomes one entry per object, under `name/` or at the root. An entry of another
        logged artifact is added by digest: its bytes are already in the registry.
        """
        self._ensure_can_add()
        if isinstance(uri, ManifestEntry):
            if (
                uri.ref is None
                and uri.local_path is None
                and not isinstance(uri, ArtifactManifestEntry)
            ):
                raise ValueError("only entries of a logged artifact can be referenced")
            path = check_entry_path(name or uri.path)
            birth = uri.birth_artifact_id
            if isinstance(uri, ArtifactManifestEntry) and uri._artifact is not None:
                birth = birth or uri._artifact.id
            entry = ManifestEntry(
                path, uri.digest, uri.size, ref=uri.ref, extra=dict(uri.extra),
                birth_artifact_id=birth, local_path=uri.local_path,
            )  # fmt: skip
            return [self._put(entry)]
        from artifactfs.cache.references import resolve_reference

        config = self._resolver.config if self._resolver is not None else None
        if config is None:
            from artifactfs.config import load_config

            config = load_config()
        objects = resolve_reference(uri, checksum, max_objects, config)
        if not objects:
            raise FileNotFoundError(f"reference {uri!r} names no object")
        planned: list[ManifestEntry] = []
        for obj in objects:
            if obj.path:
                rel = f"{name.rstrip('/')}/{obj.path}" if name else obj.path
            else:
                rel = name or posixpath.basename(urlparse(obj.uri).path.rstrip("/"))
                if not rel:
                    raise InvalidPathError(f"cannot name reference {uri!r}; pass name=")
            planned.append(
                ManifestEntry(
                    check_entry_path(rel), obj.digest, obj.size, ref=obj.uri, extra=obj.extra
                )
            )
        return [self._put(e) for e in planned]

    def remove(self, item: str | os.PathLike[str] | ManifestEntry) -> None:
        """Remove a path, every path under a directory prefix, or an entry."""
        self._ensure_can_add()
        raw = item.path if isinstance(item, ManifestEntry) else os.fspath(item)
        path = check_entry_path(raw)
        victims = [path] if path in self._manifest else [
            p for p in self._manifest.entries if p.startswith(path + "/")
        ]  # fmt: skip
        if not victims:
            raise FileNotFoundError(f"{raw!r} is not in artifact {self._name}")
        for p in victims:
            removed = self._manifest.remove(p)
            if removed.local_path:
                self._added_local_paths.pop(removed.local_path, None)

    def get_added_local_path_name(self, local_path: str | os.PathLike[str]) -> str | None:
        """The artifact path a local file was added under, or None."""
        return self._added_local_paths.get(os.path.abspath(os.fspath(local_path)))

    def finalize(self) -> None:
        """Freeze the contents; `log_artifact` does this itself."""
        self._final = True

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

    def _default_root(self) -> Path:
        return default_artifact_dir() / self.name

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
            from artifactfs.run import _auto_run

            with _auto_run(project) as run:
                run.log_artifact(self)
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

    def logged_by(self) -> PublicRun | None:
        from artifactfs.api import Run as PublicRun

        rec = self._ensure_logged("logged_by")
        resolver = self._resolver_or_raise()
        if not rec.logged_by:
            return None
        run = resolver.registry.run(rec.entity, rec.project, rec.logged_by)
        if run is None and rec.source:
            run = resolver.registry.run(rec.source["entity"], rec.source["project"], rec.logged_by)
        return PublicRun(run, resolver) if run is not None else None

    def used_by(self) -> list[PublicRun]:
        from artifactfs.api import Run as PublicRun

        rec = self._ensure_logged("used_by")
        resolver = self._resolver_or_raise()
        return [PublicRun(r, resolver) for r in resolver.registry.users(rec)]

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
