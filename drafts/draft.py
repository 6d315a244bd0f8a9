"""Changing a draft: the file operations a shell performs, applied copy-on-write to the view.

Every mutation keeps the draft recoverable: staged bytes go to `files/` (via `tmp/` when copied
up), and what files cannot tell (deleted or moved stored entries, options) is journaled in the
state file before the in-memory overlay changes. The first mutation materializes the draft (its
base version is fixed from then on); the first write to an unchanged file copies it up (fetch
into the shared cache, copy into `files/`).

Apart from the view (view.py) so the read side stays small and each new operation lands here.
Knows nothing about FUSE: errors are OSError with the errno a shell would show, so the mount's
draft callbacks (fusefs/draft_ops.py) pass them through.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifactfs.drafts.errors import DraftNotFoundError
from artifactfs.drafts.layout import draft_dir, is_materialized
from artifactfs.drafts.state import DraftOptions
from artifactfs.drafts.view import DraftView, err, latest_record, norm, parent
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.records import VersionRecord

log = logging.getLogger(__name__)

FILE_MODE = 0o644
DIR_MODE = 0o755


class Draft(DraftView):
    """One draft: the view (DraftView) plus its mutations."""

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
        super().__init__(root, entity, project, name, resolver, base, readonly=readonly)
        self.on_copy_up: Callable[[], None] | None = None
        """Told when open_file copies a stored file up (the workspace counts them)."""

    # -- persistent state -----------------------------------------------------------------------
    def materialize(self) -> None:
        """Create the on-disk draft (first mutation); from then on its base is fixed."""
        if self.materialized:
            return
        if self.readonly:
            raise err(errno.EROFS, self.qualified_name)
        self.staging.create()
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

    # -- helpers for mutations ------------------------------------------------------------------
    def _ensure_staged_dir(self, path: str) -> None:
        """Give `path` (a directory of the view) a real directory in files/, so it stays
        visible when the stored files that made it exist go away, and can hold new files."""
        self.materialize()
        self.staging.ensure_dir(path)

    def _check_parent(self, path: str) -> None:
        if not path:
            raise err(errno.EEXIST, path)
        up = self.lookup(parent(path))
        if up is None:
            raise err(errno.ENOENT, path)
        if not up.is_dir:
            raise err(errno.ENOTDIR, path)

    def _copy_up(self, path: str, entry: ManifestEntry, keep_content: bool) -> None:
        """Make the stored file at `path` a staged one (the first write to an unchanged file)."""
        self._ensure_staged_dir(parent(path))
        try:
            cached = self.resolver.fetch(entry) if keep_content and (entry.size or 0) > 0 else None
            self.staging.install(path, cached, FILE_MODE)
        except ArtifactFSError as e:
            log.error("cannot copy up %s/%s: %s", self.qualified_name, path, e)
            raise err(errno.EIO, path) from e

    # -- files ----------------------------------------------------------------------------------
    def open_file(self, path: str, flags: int, mode: int = FILE_MODE) -> int:
        """An OS fd on the staged file at `path` for writing (copy-up or create as needed).
        Read-only opens of stored files do not come here (they read through the cache)."""
        path = norm(path)
        with self.lock:
            found = self.lookup(path)
            copied = False
            if found is not None and found.is_dir:
                raise err(errno.EISDIR, path)
            if found is None:
                if not flags & os.O_CREAT:
                    raise err(errno.ENOENT, path)
                self._check_parent(path)
                self._ensure_staged_dir(parent(path))
            elif found.staged is None:
                if flags & os.O_EXCL and flags & os.O_CREAT:
                    raise err(errno.EEXIST, path)
                assert found.entry is not None
                self._copy_up(path, found.entry, keep_content=not flags & os.O_TRUNC)
                copied = True
            keep = os.O_ACCMODE | os.O_APPEND | os.O_TRUNC | os.O_CREAT | os.O_EXCL
            fd = os.open(self.staged_path(path), flags & keep, mode & 0o7777 or FILE_MODE)
            if (flags & os.O_ACCMODE) != os.O_RDONLY:
                self.open_writers += 1
            if copied and self.on_copy_up is not None:
                self.on_copy_up()
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
                raise err(errno.EISDIR, path)
            if found.staged is None:
                assert found.entry is not None
                self._copy_up(path, found.entry, keep_content=length > 0)
            os.truncate(self.staged_path(path), length)

    def fsync(self) -> None:
        self.statefile.sync()

    # -- the tree -------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = DIR_MODE) -> None:
        path = norm(path)
        with self.lock:
            if self.lookup(path) is not None:
                raise err(errno.EEXIST, path)
            self._check_parent(path)
            self._ensure_staged_dir(parent(path))
            os.mkdir(self.staged_path(path), mode & 0o7777 or DIR_MODE)

    def unlink(self, path: str) -> None:
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.is_dir:
                raise err(errno.EISDIR, path)
            self._ensure_staged_dir(parent(path))
            if self.overlay.get(path) is not None:
                self._journal({"op": "rm", "p": path})
                self.overlay.remove(path)
            if found.staged is not None:
                os.unlink(self.staged_path(path))

    def rmdir(self, path: str) -> None:
        path = norm(path)
        with self.lock:
            if not path:
                raise err(errno.EBUSY, path)
            found = self.node(path)
            if not found.is_dir:
                raise err(errno.ENOTDIR, path)
            if self.listdir(path):
                raise err(errno.ENOTEMPTY, path)
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
                raise err(errno.EBUSY, src or dst)
            if src == dst:
                return
            if dst.startswith(src + "/"):
                raise err(errno.EINVAL, dst)
            self._check_parent(dst)
            d = self.lookup(dst)
            if d is not None:
                if noreplace:
                    raise err(errno.EEXIST, dst)
                if s.is_dir and not d.is_dir:
                    raise err(errno.ENOTDIR, dst)
                if d.is_dir and not s.is_dir:
                    raise err(errno.EISDIR, dst)
                if d.is_dir:
                    if self.listdir(dst):
                        raise err(errno.ENOTEMPTY, dst)
                    with contextlib.suppress(FileNotFoundError):
                        os.rmdir(self.staged_path(dst))
            self._ensure_staged_dir(parent(src))
            self._ensure_staged_dir(parent(dst))
            sp, dp = self.staged_path(src), self.staged_path(dst)
            if s.staged is not None:
                os.rename(sp, dp)
            elif d is not None and d.staged is not None and not d.is_dir:
                os.unlink(dp)
            stored_src = self.overlay.get(src) is not None or self.overlay.is_dir(src)
            if stored_src or self.overlay.get(dst) is not None:
                self._journal({"op": "mv", "s": src, "d": dst})
                self.overlay.rename(src, dst)

    # -- metadata kept while the draft lives ----------------------------------------------------
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


def open_draft(resolver: Any, write_dir: Path, entity: str, project: str, name: str) -> Draft:
    """The draft of entity/project/name: its on-disk state if any, else a fresh view of latest."""
    root = draft_dir(write_dir, entity, project, name)
    if is_materialized(root):
        return Draft(root, entity, project, name, resolver)
    return Draft(
        root, entity, project, name, resolver, latest_record(resolver, entity, project, name)
    )


def find_draft(resolver: Any, write_dir: Path, spec: str, *, readonly: bool = False) -> Draft:
    """`entity/project/name` -> its materialized draft (DraftNotFoundError otherwise)."""
    parts = spec.strip("/").split("/")
    if len(parts) != 3 or not all(parts) or ":" in spec:
        raise DraftNotFoundError(f"invalid draft {spec!r}: expected entity/project/name")
    entity, project, name = parts
    root = draft_dir(write_dir, entity, project, name)
    if not is_materialized(root):
        raise DraftNotFoundError(f"no draft {spec} in {write_dir}")
    return Draft(root, entity, project, name, resolver, readonly=readonly)
