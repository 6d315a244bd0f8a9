"""Drafts on local disk: a copy-on-write view of a version that ordinary file operations change.

A draft of `entity/project/name` lives in `WRITE_DIR/entity/project/name/`:

    state.json, ops.<gen>.jsonl   base version, whiteouts, moved entries, options (staging_state)
    files/                        staged bytes: every created or changed file, as a plain file
    tmp/                          copy-ups in progress (renamed into files/ when complete)
    committing.json               present only while a commit is in flight (commit.py)

The view is `files/` on top of the stored layer (staging_overlay.Overlay: base entries minus
whiteouts plus moves). Reading an unchanged file goes through the resolver and the shared cache,
lazily; the first write to it copies it up (fetch into the cache, copy into `files/`). Nothing is
held only in memory: after a crash, `files/` plus the state file is the draft.

This module knows nothing about FUSE. Errors are OSError with the errno a shell would show, so
the FUSE adapter (drafts.py) passes them through.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from artifactfs.drafts.errors import DraftNotFoundError
from artifactfs.drafts.overlay import Overlay, entry_from_json
from artifactfs.drafts.state import DraftOptions, DraftState, StateFile
from artifactfs.errors import ArtifactFSError, ArtifactNotFoundError
from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.names import check_entry_path
from artifactfs.resolver.records import VersionRecord

log = logging.getLogger(__name__)

FILE_MODE = 0o644
DIR_MODE = 0o755


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def norm(path: str) -> str:
    """Draft-relative path in canonical form; '' is the draft root."""
    path = path.strip("/")
    return check_entry_path(path) if path else ""


@dataclass(frozen=True)
class Node:
    """What a path of a draft is: a staged file/dir (on disk) or a stored file/implicit dir."""

    kind: str  # "file" | "dir"
    staged: os.stat_result | None = None
    entry: ManifestEntry | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


@dataclass
class DraftDiff:
    added: list[str]
    modified: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.removed)


class Draft:
    """One draft: the view, its mutations, and the manifest it would commit."""

    def __init__(
        self,
        root: Path,
        entity: str,
        project: str,
        name: str,
        resolver: Any,
        base: VersionRecord | None = None,
        *,
        readonly: bool = False,
    ) -> None:
        self.readonly = readonly
        self.root = root
        self.entity = entity
        self.project = project
        self.name = name
        self.resolver = resolver
        self.files = root / "files"
        self.tmp = root / "tmp"
        self.lock = threading.RLock()
        self.statefile = StateFile(root)
        self.open_writers = 0
        if self.statefile.exists():
            self._load()
        else:
            self.state = DraftState(entity, project, name)
            if base is not None:
                self.state.base_version = base.version
                self.state.base_manifest_key = base.manifest_key
                self.state.base_digest = base.digest
            self.overlay = Overlay(self._base_manifest(), set(), {})
        self.base_created_at = base.created_at if base is not None else self.state.created_at

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def materialized(self) -> bool:
        return self.statefile.exists()

    # -- loading --------------------------------------------------------------------------------
    def _base_manifest(self) -> Manifest | None:
        key = self.state.base_manifest_key
        if key is None:
            return None
        registry = self.resolver.registry
        try:
            record = registry.version(
                self.entity, self.project, self.name, int(self.state.base_version)
            )
            if record.manifest_key == key:
                return registry.manifest(record)
        except ArtifactNotFoundError:
            pass  # the base was deleted since; its manifest is immutable and still stored
        raw, _ = registry.store.get(key)
        return Manifest.from_bytes(raw)

    def _load(self) -> None:
        state, ops = self.statefile.load()
        self.state = state
        moves = {p: entry_from_json(p, e) for p, e in state.moves.items()}
        self.overlay = Overlay(self._base_manifest(), set(state.whiteouts), moves)
        for op in ops:
            self.overlay.apply(op)
        if ops and not self.readonly:
            self._compact()

    def _compact(self) -> None:
        self.state.whiteouts = self.overlay.whiteouts
        self.state.moves = {p: e.to_json() for p, e in self.overlay.moves.items()}
        self.statefile.write(self.state)

    def materialize(self) -> None:
        """Create the on-disk draft (first mutation); from then on its base is fixed."""
        if self.materialized:
            return
        if self.readonly:
            raise _err(errno.EROFS, self.qualified_name)
        self.files.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        self._compact()
        log.info(
            "draft %s started from %s",
            self.qualified_name,
            "nothing" if self.state.base_version is None else f"v{self.state.base_version}",
        )

    def _journal(self, op: dict[str, Any]) -> None:
        self.materialize()
        if self.statefile.append(self.state, op):
            self._compact()

    def set_options(self, options: DraftOptions) -> None:
        with self.lock:
            self.materialize()
            self.state.options = options
            self._compact()

    @property
    def options(self) -> DraftOptions:
        return self.state.options

    # -- the view -------------------------------------------------------------------------------
    def staged_path(self, path: str) -> Path:
        return self.files / path if path else self.files

    def lookup(self, path: str) -> Node | None:
        path = norm(path)
        try:
            st = os.lstat(self.staged_path(path))
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None:
            return Node("dir" if stat.S_ISDIR(st.st_mode) else "file", staged=st)
        if not path:
            return Node("dir")
        entry = self.overlay.get(path)
        if entry is not None:
            return Node("file", entry=entry)
        if self.overlay.is_dir(path):
            return Node("dir")
        return None

    def node(self, path: str) -> Node:
        found = self.lookup(path)
        if found is None:
            raise _err(errno.ENOENT, path)
        return found

    def listdir(self, path: str) -> list[str]:
        path = norm(path)
        if not self.node(path).is_dir:
            raise _err(errno.ENOTDIR, path)
        names = dict.fromkeys(self.overlay.children(path))
        try:
            names.update(dict.fromkeys(os.listdir(self.staged_path(path))))
        except (FileNotFoundError, NotADirectoryError):
            pass
        return list(names)

    def read_stored(self, entry: ManifestEntry, offset: int, size: int) -> bytes:
        return self.resolver.read(entry, offset, size)

    # -- helpers for mutations ------------------------------------------------------------------
    def _ensure_staged_dir(self, path: str) -> None:
        """Give `path` (a directory of the view) a real directory in files/, so it stays
        visible when the stored files that made it exist go away, and can hold new files."""
        self.materialize()
        os.makedirs(self.staged_path(path), exist_ok=True)

    def _check_parent(self, path: str) -> None:
        if not path:
            raise _err(errno.EEXIST, path)
        parent = self.lookup(_parent(path))
        if parent is None:
            raise _err(errno.ENOENT, path)
        if not parent.is_dir:
            raise _err(errno.ENOTDIR, path)

    def _copy_up(self, path: str, entry: ManifestEntry, keep_content: bool) -> None:
        """Make the stored file at `path` a staged one (the first write to an unchanged file)."""
        self._ensure_staged_dir(_parent(path))
        tmp = self.tmp / f"up-{uuid.uuid4().hex}"
        try:
            if keep_content and (entry.size or 0) > 0:
                cached = self.resolver.fetch(entry)
                shutil.copyfile(cached, tmp)
            else:
                tmp.touch()
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, self.staged_path(path))
        except ArtifactFSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            log.error("cannot copy up %s/%s: %s", self.qualified_name, path, e)
            raise _err(errno.EIO, path) from e
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    # -- mutations ------------------------------------------------------------------------------
    def open_file(self, path: str, flags: int, mode: int = FILE_MODE) -> int:
        """An OS fd on the staged file at `path` for writing (copy-up or create as needed).
        Read-only opens of stored files do not come here (they read through the cache)."""
        path = norm(path)
        with self.lock:
            found = self.lookup(path)
            if found is not None and found.is_dir:
                raise _err(errno.EISDIR, path)
            if found is None:
                if not flags & os.O_CREAT:
                    raise _err(errno.ENOENT, path)
                self._check_parent(path)
                self._ensure_staged_dir(_parent(path))
            elif found.staged is None:
                if flags & os.O_EXCL and flags & os.O_CREAT:
                    raise _err(errno.EEXIST, path)
                assert found.entry is not None
                self._copy_up(path, found.entry, keep_content=not flags & os.O_TRUNC)
            keep = os.O_ACCMODE | os.O_APPEND | os.O_TRUNC | os.O_CREAT | os.O_EXCL
            fd = os.open(self.staged_path(path), flags & keep, mode & 0o7777 or FILE_MODE)
            if (flags & os.O_ACCMODE) != os.O_RDONLY:
                self.open_writers += 1
            return fd

    def open_staged_readonly(self, path: str) -> int:
        return os.open(self.staged_path(norm(path)), os.O_RDONLY)

    def writer_closed(self) -> None:
        with self.lock:
            self.open_writers = max(0, self.open_writers - 1)

    def truncate(self, path: str, length: int) -> None:
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.is_dir:
                raise _err(errno.EISDIR, path)
            if found.staged is None:
                assert found.entry is not None
                self._copy_up(path, found.entry, keep_content=length > 0)
            os.truncate(self.staged_path(path), length)

    def mkdir(self, path: str, mode: int = DIR_MODE) -> None:
        path = norm(path)
        with self.lock:
            if self.lookup(path) is not None:
                raise _err(errno.EEXIST, path)
            self._check_parent(path)
            self._ensure_staged_dir(_parent(path))
            os.mkdir(self.staged_path(path), mode & 0o7777 or DIR_MODE)

    def unlink(self, path: str) -> None:
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.is_dir:
                raise _err(errno.EISDIR, path)
            self._ensure_staged_dir(_parent(path))
            if self.overlay.get(path) is not None:
                self._journal({"op": "rm", "p": path})
                self.overlay.remove(path)
            if found.staged is not None:
                os.unlink(self.staged_path(path))

    def rmdir(self, path: str) -> None:
        path = norm(path)
        with self.lock:
            if not path:
                raise _err(errno.EBUSY, path)
            found = self.node(path)
            if not found.is_dir:
                raise _err(errno.ENOTDIR, path)
            if self.listdir(path):
                raise _err(errno.ENOTEMPTY, path)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(self.staged_path(path))

    def rename(self, src: str, dst: str, *, noreplace: bool = False) -> None:
        """rename(2) inside the draft. Staged bytes move with a real rename; stored files move
        as manifest entries (no download). The file system part happens first, then the
        journal: a crash in between can show a moved file at both places, never lose one."""
        src, dst = norm(src), norm(dst)
        with self.lock:
            s = self.node(src)
            if not src or not dst:
                raise _err(errno.EBUSY, src or dst)
            if src == dst:
                return
            if dst.startswith(src + "/"):
                raise _err(errno.EINVAL, dst)
            self._check_parent(dst)
            d = self.lookup(dst)
            if d is not None:
                if noreplace:
                    raise _err(errno.EEXIST, dst)
                if s.is_dir and not d.is_dir:
                    raise _err(errno.ENOTDIR, dst)
                if d.is_dir and not s.is_dir:
                    raise _err(errno.EISDIR, dst)
                if d.is_dir:
                    if self.listdir(dst):
                        raise _err(errno.ENOTEMPTY, dst)
                    with contextlib.suppress(FileNotFoundError):
                        os.rmdir(self.staged_path(dst))
            self._ensure_staged_dir(_parent(src))
            self._ensure_staged_dir(_parent(dst))
            sp, dp = self.staged_path(src), self.staged_path(dst)
            if s.staged is not None:
                os.rename(sp, dp)
            elif d is not None and d.staged is not None and not d.is_dir:
                os.unlink(dp)
            stored_src = self.overlay.get(src) is not None or self.overlay.is_dir(src)
            if stored_src or self.overlay.get(dst) is not None:
                self._journal({"op": "mv", "s": src, "d": dst})
                self.overlay.rename(src, dst)

    def chmod(self, path: str, mode: int) -> None:
        """Modes are not part of an artifact: kept on staged files, ignored on stored ones."""
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.staged is not None:
                os.chmod(self.staged_path(path), mode & 0o7777)

    def utimens(self, path: str, times_ns: tuple[int, int] | None) -> None:
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.staged is not None:
                if times_ns is None:
                    os.utime(self.staged_path(path))
                else:
                    os.utime(self.staged_path(path), ns=times_ns)

    def fsync(self) -> None:
        self.statefile.sync()

    # -- what would be committed ----------------------------------------------------------------
    def staged_dirs(self) -> Iterator[str]:
        """Every directory made in the draft (draft paths), empty ones included: they vanish at
        commit (versions hold files only), so the mount must forget them."""
        for rel, dirnames, _filenames in self._walk_staged():
            for d in dirnames:
                yield f"{rel}{d}"

    def staged_files(self) -> Iterator[tuple[str, Path]]:
        """Every staged regular file: (draft path, disk path). Symlinks and specials are
        skipped (the FUSE layer refuses to create them)."""
        for rel, _dirnames, filenames in self._walk_staged():
            for fn in filenames:
                full = self.files / f"{rel}{fn}"
                if full.is_file() and not full.is_symlink():
                    yield f"{rel}{fn}", full

    def _walk_staged(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """os.walk of the staged tree with each directory as a draft-path prefix ("" or "a/b/")."""
        if not self.files.is_dir():
            return
        base = str(self.files)
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            yield ("" if rel == "." else f"{rel}/"), dirnames, filenames

    def build_manifest(self) -> Manifest:
        """The draft's full contents as a manifest: stored entries keep digest/size/ref, staged
        files are hashed (with local_path set so the registry can upload them)."""
        with self.lock:
            manifest = Manifest()
            staged: set[str] = set()
            for path, disk in self.staged_files():
                staged.add(path)
                manifest.add(
                    ManifestEntry(
                        path=path,
                        digest=md5_b64_of_file(str(disk)),
                        size=disk.stat().st_size,
                        local_path=str(disk),
                    )
                )
            for entry in self.overlay.visible():
                if entry.path not in staged:
                    manifest.add(replace(entry, extra=dict(entry.extra), local_path=None))
            return manifest

    def base_manifest(self) -> Manifest | None:
        return self.overlay.base

    def diff(self, manifest: Manifest | None = None) -> DraftDiff:
        manifest = manifest if manifest is not None else self.build_manifest()
        base = self.overlay.base or Manifest()
        added = sorted(p for p in manifest.entries if p not in base.entries)
        modified = sorted(
            p
            for p, e in manifest.entries.items()
            if p in base.entries and base.entries[p].digest != e.digest
        )
        removed = sorted(p for p in base.entries if p not in manifest.entries)
        return DraftDiff(added, modified, removed)

    def has_changes(self, manifest: Manifest | None = None) -> bool:
        if not self.materialized:
            return False
        manifest = manifest if manifest is not None else self.build_manifest()
        if self.state.base_digest is None:
            return len(manifest) > 0
        return manifest.digest() != self.state.base_digest

    def close(self) -> None:
        self.statefile.close()


def draft_dir(write_dir: Path, entity: str, project: str, name: str) -> Path:
    return write_dir / entity / project / name


def iter_draft_dirs(write_dir: Path) -> Iterator[tuple[str, str, str, Path]]:
    """(entity, project, name, dir) of every materialized draft in the write dir."""
    if not write_dir.is_dir():
        return
    for ent in sorted(write_dir.iterdir()):
        if ent.name.startswith(".") or not ent.is_dir():
            continue
        for proj in sorted(ent.iterdir()):
            if not proj.is_dir():
                continue
            for name in sorted(proj.iterdir()):
                if (name / "state.json").is_file():
                    yield ent.name, proj.name, name.name, name


def latest_record(resolver: Any, entity: str, project: str, name: str) -> VersionRecord | None:
    """The version a new draft of this name starts from (None: a new collection)."""
    registry = resolver.registry
    try:
        n = registry.aliases(entity, project, name).get("latest")
        return None if n is None else registry.version(entity, project, name, n)
    except ArtifactNotFoundError:
        return None


def open_draft(resolver: Any, write_dir: Path, entity: str, project: str, name: str) -> Draft:
    """The draft of entity/project/name: its on-disk state if any, else a fresh view of latest."""
    root = draft_dir(write_dir, entity, project, name)
    if (root / "state.json").is_file():
        return Draft(root, entity, project, name, resolver)
    return Draft(
        root, entity, project, name, resolver, latest_record(resolver, entity, project, name)
    )


def find_draft(resolver: Any, write_dir: Path, spec: str, *, readonly: bool = False) -> Draft:
    """`entity/project/name` -> its materialized draft (DraftNotFoundError otherwise)."""
    parts = spec.strip("/").split("/")
    if len(parts) != 3 or not all(parts) or ":" in spec:
        raise DraftNotFoundError(f"invalid draft {spec!r}: expected entity/project/name")
    root = draft_dir(write_dir, *parts)
    if not (root / "state.json").is_file():
        raise DraftNotFoundError(f"no draft {spec} in {write_dir}")
    return Draft(root, *parts, resolver, readonly=readonly)
