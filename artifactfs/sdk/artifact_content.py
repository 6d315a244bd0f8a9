"""Building an artifact's contents: add files, directories, references and tables; remove them.

Everything here acts on a PENDING artifact (the guard `_ensure_can_add` refuses a finalized one)
and only changes the local manifest: digests are computed now, bytes are uploaded when the
artifact is logged. Content written through `new_file()` or `add(table)` is staged in a private
temporary directory that lives until the artifact is logged (or garbage-collected).

`ArtifactContent` is the content-building layer of `Artifact` (artifact.py), apart from the reads
and registry operations of a logged artifact; W&B's further ways to add content belong here.

W&B's rules: adding different content under a path the artifact already holds raises
`ValueError("Cannot add the same path twice")` unless `overwrite=True` (`merge=True` for
add_dir); the same content again is a no-op. `policy="mutable"` (the default) copies each added
file into a private staging directory so later changes to the original cannot change what is
logged; `policy="immutable"` trusts the caller and reads the original at upload time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from typing import IO, Any, Literal
from urllib.parse import urlparse

from artifactfs.errors import InvalidNameError, InvalidPathError
from artifactfs.fsspec.paths import parse
from artifactfs.resolver.manifest import (
    ARTIFACT_URL,
    ManifestEntry,
    artifact_url,
    b64_to_hex,
    md5_b64_of_file,
)
from artifactfs.resolver.names import check_entry_path
from artifactfs.resolver.records import VersionRecord
from artifactfs.sdk.artifact_core import ArtifactCore
from artifactfs.sdk.artifact_entry import ArtifactManifestEntry
from artifactfs.sdk.lookup import open_resolver
from artifactfs.sdk.session import RunSession, current
from artifactfs.sdk.table import Table, table_path
from artifactfs.settings import load_config

log = logging.getLogger(__name__)

Policy = Literal["mutable", "immutable"]


def _from_other(entry: ManifestEntry, path: str, record: VersionRecord | None) -> ManifestEntry:
    """`entry` of another artifact as an entry at `path` of this one, without copying bytes:
    stored content becomes an `artifact://` reference to its version (still stored by digest,
    so it is read, verified and deduplicated as content); an external reference stays one."""
    ref = entry.ref
    if ref is None and record is not None and entry.local_path is None:
        ref = artifact_url(record.entity, record.project, record.name, record.version, entry.path)
    return ManifestEntry(
        path, entry.digest, entry.size, ref=ref, extra=dict(entry.extra),
        birth_artifact_id=entry.birth_artifact_id or (record.id if record else None),
        local_path=entry.local_path,
    )  # fmt: skip


class ArtifactContent(ArtifactCore):
    """The content-building methods of `Artifact` (use `Artifact`, which builds on this)."""

    # -- staging ---------------------------------------------------------------------------------
    def _cleanup_tmp(self) -> None:
        if self._tmpdir is not None:
            self._tmp_finalizer()
            self._tmpdir = None

    def _tmp(self) -> str:
        """The artifact's private staging directory, beside the drafts' write directory (on
        disk, never a RAM-backed /tmp: staged copies can be as big as the dataset)."""
        if self._tmpdir is None:
            base = load_config().write_dir.parent / "staging"
            base.mkdir(parents=True, exist_ok=True)
            self._tmpdir = tempfile.mkdtemp(prefix="artifact-", dir=base)
            # Not __del__: at interpreter exit an artifact may be collected after this module's
            # globals are gone; a finalizer holds its own function and runs at exit too.
            self._tmp_finalizer = weakref.finalize(
                self, shutil.rmtree, self._tmpdir, ignore_errors=True
            )
        return self._tmpdir

    # -- adding contents -------------------------------------------------------------------------
    def _put(self, entry: ManifestEntry, overwrite: bool = False) -> ArtifactManifestEntry:
        """Add `entry`; a different entry already at its path is W&B's error unless
        `overwrite` (the same digest again just replaces it)."""
        path = check_entry_path(entry.path)
        old = self._manifest.get(path)
        if old is not None and not overwrite and old.digest != entry.digest:
            raise ValueError(f"Cannot add the same path twice: {path!r}")
        if old is not None:
            self._forget_local(path)
        wrapped = ArtifactManifestEntry.of(entry, self)
        self._manifest.add(wrapped)
        return wrapped

    def _stage(self, local: str, policy: Policy | None) -> str:
        """The file to upload: a private read-only copy for `mutable`, else the original."""
        policy = policy or "mutable"
        if policy not in ("mutable", "immutable"):
            raise ValueError(f"invalid policy {policy!r}: use 'mutable' or 'immutable'")
        if policy == "immutable":
            return os.path.abspath(local)
        fd, staged = tempfile.mkstemp(dir=self._tmp())
        os.close(fd)
        shutil.copyfile(local, staged)
        os.chmod(staged, 0o400)
        return staged

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: Policy | None = "mutable",
        overwrite: bool = False,
    ) -> ArtifactManifestEntry:
        """Add one local file as `name` (default: its basename). With `is_tmp`, the part of the
        file name before the first dot becomes the first 20 hex chars of its MD5 (W&B's rule),
        so temporary files with colliding names do not overwrite each other. `skip_cache` is
        kept on the entry, as W&B's (uploads never fill the cache here)."""
        self._ensure_can_add()
        local = os.fspath(local_path)
        if not os.path.isfile(local):
            raise ValueError(f"Path is not a file: {local!r}")
        path = check_entry_path(name if name is not None else os.path.basename(local))
        staged = self._stage(local, policy)
        digest = md5_b64_of_file(staged, progress=self._hash_progress)
        if is_tmp:
            head, base = posixpath.split(path)
            parts = base.split(".")
            parts[0] = b64_to_hex(digest)[:20]
            path = posixpath.join(head, ".".join(parts)) if head else ".".join(parts)
        entry = self._put(
            ManifestEntry(
                path,
                digest,
                os.path.getsize(staged),
                local_path=staged,
                skip_cache=bool(skip_cache),
            ),
            overwrite,
        )
        self._added_local_paths[os.path.abspath(local)] = path
        return entry

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        skip_cache: bool | None = False,
        policy: Policy | None = "mutable",
        merge: bool = False,
    ) -> None:
        """Add every file under `local_path`, at the root or under `name/`. A file already in
        the artifact with other content raises unless `merge` (then it is replaced). All paths
        are validated before any is added, so a bad path leaves the artifact unchanged."""
        self._ensure_can_add()
        local = os.fspath(local_path)
        if not os.path.isdir(local):
            raise ValueError(f"Path is not a directory: {local!r}")
        prefix = check_entry_path(name) if name else ""
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(local, followlinks=True):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, local).replace(os.sep, "/")
                found.append((full, check_entry_path(f"{prefix}/{rel}" if prefix else rel)))
        for full, path in found:
            self.add_file(full, name=path, skip_cache=skip_cache, policy=policy, overwrite=merge)
        log.debug("added %d files from %s", len(found), local)

    @contextlib.contextmanager
    def new_file(
        self,
        name: str,
        mode: str = "x",
        encoding: str | None = None,
        policy: Policy = "mutable",
    ) -> Iterator[IO[Any]]:
        """Open a fresh file; it is added to the artifact as `name` when the block closes.
        W&B's default mode `x` refuses a name the artifact already holds with other content;
        `w` replaces it."""
        self._ensure_can_add()
        path = check_entry_path(name)
        local = os.path.join(tempfile.mkdtemp(dir=self._tmp()), os.path.basename(path))
        with open(local, mode, encoding=encoding) as f:
            yield f
        self.add_file(local, name=path, policy="immutable", overwrite="x" not in mode)

    def add(self, obj: Table, name: str, overwrite: bool = False) -> ArtifactManifestEntry:
        """Add a Table, stored as JSON at `name.table.json`."""
        self._ensure_can_add()
        if not isinstance(obj, Table):
            raise ValueError(f"cannot add a {type(obj).__name__}; only Table is supported")
        path = check_entry_path(table_path(name))
        local = os.path.join(tempfile.mkdtemp(dir=self._tmp()), posixpath.basename(path))
        with open(local, "wb") as f:
            f.write(obj.to_bytes())
        return self.add_file(local, name=path, policy="immutable", overwrite=overwrite)

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
        logged artifact (or its `ref_url()`, `artifact://entity/project/name:vN/path`, also a
        directory of it) is added by digest: its bytes are already in the registry.
        """
        self._ensure_can_add()
        if isinstance(uri, ManifestEntry):
            if (
                uri.ref is None
                and uri.local_path is None
                and not isinstance(uri, ArtifactManifestEntry)
            ):
                raise ValueError("only entries of a logged artifact can be referenced")
            source = uri._artifact if isinstance(uri, ArtifactManifestEntry) else None
            record = source._record if source is not None else None
            entry = _from_other(uri, check_entry_path(name or uri.path), record)
            if entry.birth_artifact_id is None and source is not None:
                entry.birth_artifact_id = source.id
            return [self._put(entry)]
        if uri.startswith(ARTIFACT_URL):
            return [self._put(e) for e in self._artifact_url_entries(uri, name)]
        # Imported here for start-up cost only (requests, boto3): most artifacts add no reference.
        from artifactfs.cache.references import handler_for, resolve_reference
        from artifactfs.cache.references.other import TrackingHandler

        scheme = urlparse(uri).scheme
        if not scheme:
            raise ValueError(
                f"references must be URIs (to reference a local file, use file://): {uri!r}"
            )
        if name is None and isinstance(handler_for(uri), TrackingHandler):
            raise ValueError(
                f'pass name="<entry name>" to track a reference with the unknown scheme '
                f"{scheme!r}: {uri}"
            )

        config = self._resolver.config if self._resolver is not None else None
        if config is None:
            config = load_config()
        objects = resolve_reference(uri, checksum, max_objects, config)
        if not objects:
            raise FileNotFoundError(f"reference {uri!r} names no object")
        planned: list[ManifestEntry] = []
        for obj in objects:
            if obj.path:
                rel = f"{name.rstrip('/')}/{obj.path}" if name else obj.path
            elif name:
                rel = name
            else:
                # W&B names a single object by the basename of the URI itself, so an http(s)
                # query string stays in the name (`q.bin?x=1`).
                parsed = urlparse(obj.uri)
                tail = obj.uri if parsed.scheme in ("http", "https") else parsed.path
                rel = posixpath.basename(tail.rstrip("/"))
                if not rel:
                    raise InvalidPathError(f"cannot name reference {uri!r}; pass name=")
            planned.append(
                ManifestEntry(
                    check_entry_path(rel), obj.digest, obj.size, ref=obj.uri, extra=obj.extra
                )
            )
        return [self._put(e) for e in planned]

    def _artifact_url_entries(self, uri: str, name: str | None) -> list[ManifestEntry]:
        """The entries an `artifact://` URL names (one file, or every file below a directory of
        a version), resolved now in the current run's registry (else the configured one) and
        pinned to the version they resolve to, so a moving alias never changes this artifact."""
        run = current(RunSession)
        resolver = run.resolver if run is not None else open_resolver()
        try:
            cfg = resolver.config
            loc = parse(
                uri[len(ARTIFACT_URL) :],
                run.entity if run is not None else cfg.entity,
                run.project if run is not None else cfg.project,
            )
            if loc.ref is None:
                raise InvalidNameError(f"{uri!r} names no version (entity/project/name:vN/...)")
            record = resolver.registry.resolve(loc.ref)
            manifest = resolver.registry.manifest(record)
        finally:
            if run is None:
                resolver.close()
        one = manifest.get(loc.inner) if loc.inner else None
        if one is not None:
            return [
                _from_other(one, check_entry_path(name or posixpath.basename(one.path)), record)
            ]
        prefix = loc.inner + "/" if loc.inner else ""
        below = [e for e in manifest if e.path.startswith(prefix)]
        if not below:
            raise FileNotFoundError(f"reference {uri!r} names nothing in {record.full_name}")
        base = name.rstrip("/") + "/" if name else ""
        return [
            _from_other(e, check_entry_path(base + e.path[len(prefix) :]), record) for e in below
        ]

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
            self._manifest.remove(p)
            self._forget_local(p)

    def _forget_local(self, path: str) -> None:
        for local, added_as in list(self._added_local_paths.items()):
            if added_as == path:
                del self._added_local_paths[local]

    def get_added_local_path_name(self, local_path: str | os.PathLike[str]) -> str | None:
        """The artifact path a local file was added under, or None."""
        return self._added_local_paths.get(os.path.abspath(os.fspath(local_path)))

    def finalize(self) -> None:
        """Freeze the contents; `log_artifact` does this itself."""
        self._final = True
