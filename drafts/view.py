"""What a draft shows: the staged layer on top of the stored one, loaded from its draft dir.

A draft of `entity/project/name` lives in `WRITE_DIR/entity/project/name/`:

    state.json, ops.<gen>.jsonl   registry, base version, whiteouts, moved entries, options
    files/                        the staged tree: a real local directory (staging.py)
    tmp/                          copy-ups in progress (renamed into files/ when complete)
    committing.json               present only while a commit is in flight (commit.py)

The view is `files/` on top of the stored layer (overlay.Overlay: base entries minus whiteouts
plus moves). Reading an unchanged file goes through the resolver and the shared cache, lazily.
Nothing is held only in memory: after a crash, `files/` plus the state file is the draft.

Apart from the mutations (draft.py) so the read-only users (`artifactfs status`/`diff`, the
mount's lookups) and the rules of what a path *is* sit in one place; new kinds of entries are
taught here first. Knows nothing about FUSE: errors are OSError with the errno a shell shows.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from artifactfs.drafts.binding import Binding
from artifactfs.drafts.contents import Contents, DraftDiff, build_contents, diff, same_contents
from artifactfs.drafts.overlay import Overlay, entry_from_json
from artifactfs.drafts.staging import StagingArea
from artifactfs.drafts.state import DraftOptions, DraftState, StateFile
from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver.manifest import Manifest, ManifestEntry
from artifactfs.resolver.names import check_entry_path
from artifactfs.resolver.records import VersionRecord


def err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def parent(path: str) -> str:
    return path.rpartition("/")[0]


@functools.lru_cache(maxsize=1 << 14)
def norm(path: str) -> str:
    """Draft-relative path in canonical form; '' is the draft root. Cached: a pure function,
    asked several times per FUSE request."""
    path = path.strip("/")
    return check_entry_path(path) if path else ""


@dataclass(frozen=True)
class Node:
    """What a path of a draft is: a staged entry (on disk: file, placeholder, directory,
    symlink) or a stored file / implicit directory of the stored layer."""

    kind: str  # "file" | "dir" | "symlink"
    staged: os.stat_result | None = None
    entry: ManifestEntry | None = None
    """Where the bytes are stored: a stored file's entry, or the one a placeholder stands for."""
    ino: int = 0
    """The inode number to show: the staged inode's, or the one it showed while stored."""

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def is_symlink(self) -> bool:
        return self.kind == "symlink"

    @property
    def reads_stored(self) -> bool:
        """Are this file's bytes read from the store (not from a staged copy)?"""
        return self.kind == "file" and self.entry is not None


def latest_record(resolver: Any, entity: str, project: str, name: str) -> VersionRecord | None:
    """The version a new draft of this name starts from (None: a new collection)."""
    registry = resolver.registry
    try:
        n = registry.aliases(entity, project, name).get("latest")
        return None if n is None else registry.version(entity, project, name, n)
    except ArtifactNotFoundError:
        return None


class DraftView:
    """One draft as it shows: identity, persistent state, the two layers, and lookups."""

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
        self.staging = StagingArea(root)
        self.owner = (os.getuid(), os.getgid())
        """Owner of the stored layer's files and of directories made to hold staged ones."""
        self.lock = threading.RLock()
        self.statefile = StateFile(root)
        self._materialized = False
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
        """Is the draft on disk? Once seen, remembered (a stat per FUSE call otherwise): only
        its own commit or discard removes it, and they drop the Draft (close())."""
        if not self._materialized:
            self._materialized = self.statefile.exists()
        return self._materialized

    @property
    def files(self) -> Path:
        """The staged tree on disk (`files/`)."""
        return self.staging.files

    @property
    def options(self) -> DraftOptions:
        return self.state.options

    @property
    def binding(self) -> Binding | None:
        """The registry this draft belongs to (None: not recorded yet)."""
        return Binding.from_json(self.state.registry)

    @property
    def base_mtime(self) -> float:
        """Seconds since the epoch shown as the time of unchanged entries (the base's birth)."""
        try:
            return datetime.fromisoformat(self.base_created_at).timestamp()
        except ValueError:
            return time.time()

    @property
    def base_mtime_ns(self) -> int:
        return int(self.base_mtime * 1_000_000_000)

    # -- loading --------------------------------------------------------------------------------
    def _base_manifest(self) -> Manifest | None:
        key, version = self.state.base_manifest_key, self.state.base_version
        if key is None:
            return None
        registry = self.resolver.registry
        try:
            if version is not None:
                record = registry.version(self.entity, self.project, self.name, version)
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

    # -- the view -------------------------------------------------------------------------------
    def staged_path(self, path: str) -> Path:
        return self.staging.path(path)

    def stored_ino(self, path: str) -> int:
        """The inode number of a stored file or directory of this draft: stable for its path,
        high bit set so it never meets a staged inode's number (kept when it is staged)."""
        key = f"{self.qualified_name}/{path}".encode("utf-8", "surrogateescape")
        return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") | 1 << 63

    def lookup(self, path: str) -> Node | None:
        path = norm(path)
        st = self.staging.lstat(path)
        if st is not None:
            if stat.S_ISLNK(st.st_mode):
                return Node("symlink", staged=st, ino=st.st_ino)
            entry, ino = self.staging.marks(path, st)
            if stat.S_ISDIR(st.st_mode):
                return Node("dir", staged=st, ino=ino)
            return Node("file", staged=st, entry=entry, ino=ino)
        if not path:
            return Node("dir", ino=self.stored_ino(path))
        entry = self.overlay.get(path)
        if entry is not None:
            return Node("file", entry=entry, ino=self.stored_ino(path))
        if self.overlay.is_dir(path):
            return Node("dir", ino=self.stored_ino(path))
        return None

    def node(self, path: str) -> Node:
        found = self.lookup(path)
        if found is None:
            raise err(errno.ENOENT, path)
        return found

    def listdir(self, path: str) -> list[str]:
        path = norm(path)
        if not self.node(path).is_dir:
            raise err(errno.ENOTDIR, path)
        names = dict.fromkeys(self.overlay.children(path))
        names.update(dict.fromkeys(self.staging.listdir(path)))
        return list(names)

    def scandir(self, path: str) -> list[tuple[str, Node]]:
        """listdir with each child's node, in one consistent look (under the draft's lock)."""
        out = []
        with self.lock:
            for name in self.listdir(path):
                node = self.lookup(f"{path}/{name}" if path else name)
                if node is not None:
                    out.append((name, node))
        return out

    def read_stored(self, entry: ManifestEntry, offset: int, size: int) -> bytes:
        return self.resolver.read(entry, offset, size)

    # -- what would be committed ----------------------------------------------------------------
    def staged_dirs(self) -> Iterator[str]:
        """Every directory made in the draft (draft paths), empty ones included: they vanish at
        commit (versions hold files only), so the mount must forget them."""
        return self.staging.dirs()

    def staged_files(self) -> Iterator[tuple[str, Path]]:
        """Every staged file holding its own bytes: (draft path, host path)."""
        for e in self.staging.entries():
            if e.is_regular and e.stored is None:
                yield e.rel, self.staging.path(e.rel)

    def staged_size(self) -> int:
        """Bytes a commit would hash (and at most upload): staged files with their own bytes,
        each inode once."""
        inodes = {
            (e.st.st_dev, e.st.st_ino): e.st.st_size
            for e in self.staging.entries()
            if e.is_regular and e.stored is None
        }
        return sum(inodes.values())

    def contents(self) -> Contents:
        """The draft's full contents and the symlinks it cannot commit (contents.py)."""
        with self.lock:
            return build_contents(self)

    def build_manifest(self) -> Manifest:
        return self.contents().manifest

    def base_manifest(self) -> Manifest | None:
        return self.overlay.base

    def diff(self, manifest: Manifest | None = None) -> DraftDiff:
        return diff(self.overlay.base, manifest if manifest is not None else self.build_manifest())

    def has_changes(self, manifest: Manifest | None = None) -> bool:
        """Would a commit record anything new: other files, bytes or exec bits than the base?"""
        if not self.materialized:
            return False
        manifest = manifest if manifest is not None else self.build_manifest()
        if self.state.base_digest is None:
            return len(manifest) > 0
        if manifest.digest() != self.state.base_digest:
            return True
        return not same_contents(self.overlay.base, manifest)

    def dirty(self) -> bool:
        """Cheap change test (no hashing): anything deleted, moved or staged."""
        if not self.materialized:
            return False
        if self.overlay.changed():
            return True
        return next(iter(self.staging.entries()), None) is not None

    def visible_paths(self) -> list[str]:
        """Every draft path the kernel may have cached: files (base, moved, deleted, staged),
        their directories and the root (''); children before parents."""
        rels: set[str] = set(self.overlay.whiteouts) | set(self.overlay.moves)
        if self.overlay.base is not None:
            rels.update(self.overlay.base.entries)
        rels.update(e.rel for e in self.staging.entries())
        rels.update(self.staged_dirs())
        for rel in list(rels):
            parts = rel.split("/")
            rels.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return [r for r in sorted(rels, key=len, reverse=True) if r] + [""]

    def close(self) -> None:
        self.statefile.close()
        self.staging.close()
        self._materialized = False
