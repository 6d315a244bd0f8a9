"""Changing a draft: the file operations a shell performs, applied copy-on-write to the view.

Every mutation keeps the draft recoverable: staged entries go to `files/` (via `tmp/` when
copied up), and what files cannot tell (deleted or moved stored entries, options) is journaled
in the state file before the in-memory overlay changes. The first mutation materializes the
draft (its registry and base version are fixed from then on). The first *data* change of an
unchanged stored file copies it up (fetch into the shared cache, copy into `files/`); the first
*metadata* change (chmod, chown, touch, setfattr, ln) makes a placeholder instead (staging.py),
so owners, modes, times, xattrs and links of stored files cost no download.

New entries get the caller's owner (`owner=(uid, gid)`, the FUSE request's; the group of a
setgid directory is inherited) and exactly the mode asked for (the kernel applied the umask).

Apart from the view (view.py) so the read side stays small and each new operation lands here.
Knows nothing about FUSE: errors are OSError with the errno a shell would show, so the mount's
draft callbacks (fusefs/draft_ops.py) pass them through.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifactfs.drafts.binding import Binding
from artifactfs.drafts.contents import stored_mode
from artifactfs.drafts.errors import DraftNotFoundError
from artifactfs.drafts.layout import draft_dir, is_materialized
from artifactfs.drafts.metadata import DIR_MODE, FILE_MODE, DraftMetadata
from artifactfs.drafts.state import DraftOptions
from artifactfs.drafts.view import DraftView, Node, err, latest_record, norm, parent
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.records import VersionRecord

log = logging.getLogger(__name__)

SPECIAL_KINDS = (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK)

Owner = tuple[int, int]
"""(uid, gid) of the caller that creates an entry."""
IS_ROOT = os.geteuid() == 0


class Draft(DraftMetadata, DraftView):
    """One draft: the view (DraftView) plus its mutations (metadata ones: metadata.py)."""

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
        """Told when a stored file is copied up (the workspace counts them)."""

    # -- persistent state -----------------------------------------------------------------------
    def materialize(self) -> None:
        """Create the on-disk draft (first mutation); from then on its base is fixed."""
        if self.materialized:
            return
        if self.readonly:
            raise err(errno.EROFS, self.qualified_name)
        if self.state.registry is None:
            self.state.registry = Binding.of(self.resolver.config).to_json()
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
        visible when the stored files that made it exist go away, and can hold new entries.
        Made with the stored layer's look (DIR_MODE, the base's time)."""
        self.materialize()
        t = self.base_mtime_ns
        self.staging.ensure_dir(path, DIR_MODE, (t, t), self.stored_ino)

    def _check_parent(self, path: str) -> None:
        if not path:
            raise err(errno.EEXIST, path)
        up = self.lookup(parent(path))
        if up is None:
            raise err(errno.ENOENT, path)
        if not up.is_dir:
            raise err(errno.ENOTDIR, path)

    def _new_entry(self, path: str) -> None:
        """Checks before creating `path`: it is free, its parent a directory (staged now)."""
        if self.lookup(path) is not None:
            raise err(errno.EEXIST, path)
        self._check_parent(path)
        self._ensure_staged_dir(parent(path))

    def _own(self, path: str, owner: Owner | None, fd: int | None = None) -> None:
        """Give a new entry its creator's owner; a setgid parent's group stays (as on disk)."""
        if owner is None or not IS_ROOT:
            return
        uid, gid = owner
        up = self.staging.lstat(parent(path))
        if up is not None and up.st_mode & stat.S_ISGID:
            gid = -1
        if (uid, gid) == (os.geteuid(), os.getegid()):
            return
        if fd is not None:
            os.fchown(fd, uid, gid)
        else:
            self.staging.chown(path, uid, gid)

    def _fetch(self, path: str, entry: ManifestEntry) -> str | None:
        try:
            return str(self.resolver.fetch(entry)) if (entry.size or 0) > 0 else None
        except ArtifactFSError as e:
            log.error("cannot copy up %s/%s: %s", self.qualified_name, path, e)
            raise err(errno.EIO, path) from e

    def _copy_up(self, path: str, node: Node, keep_content: bool) -> None:
        """Give the file at `path`, whose bytes are stored, its own bytes (its first data
        change): a placeholder is filled in place, a stored file copied into files/."""
        assert node.entry is not None
        source = self._fetch(path, node.entry) if keep_content else None
        if node.staged is not None:
            self.staging.fill(path, source)
        else:
            self._ensure_staged_dir(parent(path))
            self.staging.install(path, source, stored_mode(node.entry), node.ino)
            t = self.base_mtime_ns
            self.staging.utime(path, (t, t))
        if self.on_copy_up is not None:
            self.on_copy_up()

    def _stage_meta(self, path: str) -> Node:
        """Make `path` a staged entry so its metadata can change (metadata-only copy-up)."""
        node = self.node(path)
        if node.staged is not None:
            return node
        if node.is_dir:
            if path:
                self._ensure_staged_dir(path)
            else:
                self.materialize()
            return self.node(path)
        assert node.entry is not None
        self._ensure_staged_dir(parent(path))
        t = self.base_mtime_ns
        if not self.staging.place(path, node.entry, stored_mode(node.entry), (t, t), node.ino):
            self._copy_up(path, node, keep_content=True)
        return self.node(path)

    # -- files ----------------------------------------------------------------------------------
    def open_file(
        self, path: str, flags: int, mode: int = FILE_MODE, owner: Owner | None = None
    ) -> int:
        """An OS fd on the staged file at `path` for writing (copy-up or create as needed).
        Read-only opens of stored files do not come here (they read through the cache)."""
        path = norm(path)
        with self.lock:
            found = self.lookup(path)
            created = False
            if found is not None and found.is_dir:
                raise err(errno.EISDIR, path)
            if found is not None and found.is_symlink:
                raise err(errno.ELOOP, path)
            if found is None:
                if not flags & os.O_CREAT:
                    raise err(errno.ENOENT, path)
                self._check_parent(path)
                self._ensure_staged_dir(parent(path))
                created = True
            elif flags & os.O_EXCL and flags & os.O_CREAT:
                raise err(errno.EEXIST, path)
            elif found.reads_stored:
                self._copy_up(path, found, keep_content=not flags & os.O_TRUNC)
            keep = os.O_ACCMODE | os.O_APPEND | os.O_TRUNC | os.O_CREAT | os.O_EXCL
            fd = self.staging.open(path, flags & keep, 0o600)
            if created:
                try:
                    self._own(path, owner, fd)
                    os.fchmod(fd, mode & 0o7777)
                except BaseException:
                    os.close(fd)
                    raise
            if (flags & os.O_ACCMODE) != os.O_RDONLY:
                self.open_writers += 1
            return fd

    def open_staged_readonly(self, path: str) -> int:
        return self.staging.open_read(norm(path))

    def writer_closed(self) -> None:
        with self.lock:
            self.open_writers = max(0, self.open_writers - 1)

    def mknod(self, path: str, mode: int, owner: Owner | None = None, dev: int = 0) -> None:
        """A regular file, or a FIFO, socket or device node: those live while the draft does
        (tools make sockets and FIFOs in working trees) and a commit skips and lists them, as
        a version has no place for them (contents.py). Device nodes need CAP_MKNOD, which the
        kernel checks in the caller before asking the mount."""
        path = norm(path)
        with self.lock:
            kind = stat.S_IFMT(mode)
            if kind not in (0, stat.S_IFREG):
                if kind not in SPECIAL_KINDS:
                    raise err(errno.EINVAL, path)
                self._new_entry(path)
                os.mknod(path, kind | 0o600, dev, dir_fd=self.staging.fd())
                self.staging.chmod(path, mode & 0o7777)  # exactly what was asked, no umask
                self._own(path, owner)
                return
            if self.lookup(path) is not None:
                raise err(errno.EEXIST, path)
            fd = self.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, owner)
            os.close(fd)
            self.writer_closed()

    def truncate(self, path: str, length: int) -> None:
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.is_dir:
                raise err(errno.EISDIR, path)
            if found.is_symlink:
                raise err(errno.EINVAL, path)
            if found.reads_stored:
                self._copy_up(path, found, keep_content=length > 0)
            self.staging.truncate(path, length)

    def fallocate(self, path: str, mode: int, offset: int, length: int) -> None:
        """fallocate(2) with any mode the staging file system supports."""
        path = norm(path)
        with self.lock:
            found = self.node(path)
            if found.is_dir:
                raise err(errno.EISDIR, path)
            if found.reads_stored:
                self._copy_up(path, found, keep_content=True)
            self.staging.fallocate(path, mode, offset, length)

    def fsync(self) -> None:
        self.statefile.sync()

    # -- the tree -------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = DIR_MODE, owner: Owner | None = None) -> None:
        path = norm(path)
        with self.lock:
            self._new_entry(path)
            up = self.staging.lstat(parent(path))
            setgid = up.st_mode & stat.S_ISGID if up is not None else 0
            self.staging.mkdir(path, (mode & 0o7777) | setgid)
            self._own(path, owner)

    def symlink(self, path: str, target: str, owner: Owner | None = None) -> None:
        """A symlink, kept as one while the draft lives (resolved at commit: contents.py)."""
        path = norm(path)
        with self.lock:
            self._new_entry(path)
            self.staging.symlink(target, path)
            self._own(path, owner)

    def readlink(self, path: str) -> str:
        path = norm(path)
        if not self.node(path).is_symlink:
            raise err(errno.EINVAL, path)
        return self.staging.readlink(path)

    def link(self, src: str, dst: str) -> None:
        """A hard link: two names of one staged inode (a stored file gets a placeholder)."""
        src, dst = norm(src), norm(dst)
        with self.lock:
            s = self.node(src)
            if s.is_dir:
                raise err(errno.EPERM, src)
            self._new_entry(dst)
            if s.staged is None:
                self._stage_meta(src)
            self.staging.link(src, dst)

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
                self.staging.unlink(path)

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
                self.staging.rmdir(path)

    def rename(self, src: str, dst: str, *, noreplace: bool = False) -> None:
        """rename(2) inside the draft. Staged entries move with a real rename; stored files
        move as manifest entries (no download). The file system part happens first, then the
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
                    if s.staged is None:
                        with contextlib.suppress(FileNotFoundError):
                            self.staging.rmdir(dst)
                elif (
                    s.staged is not None
                    and d.staged is not None
                    and os.path.samestat(s.staged, d.staged)
                ):
                    return  # two names of one inode: rename(2) does nothing
            self._ensure_staged_dir(parent(src))
            self._ensure_staged_dir(parent(dst))
            if s.staged is not None:
                self.staging.rename(src, dst)
            elif d is not None and d.staged is not None and not d.is_dir:
                self.staging.unlink(dst)
            stored_src = self.overlay.get(src) is not None or self.overlay.is_dir(src)
            if stored_src or self.overlay.get(dst) is not None:
                self._journal({"op": "mv", "s": src, "d": dst})
                self.overlay.rename(src, dst)


def open_draft(resolver: Any, write_dir: Path, entity: str, project: str, name: str) -> Draft:
    """The draft of entity/project/name: its on-disk state if any, else a fresh view of latest."""
    root = draft_dir(write_dir, entity, project, name)
    if is_materialized(root):
        return Draft(root, entity, project, name, resolver)
    return Draft(
        root, entity, project, name, resolver, latest_record(resolver, entity, project, name)
    )


def parse_spec(spec: str) -> tuple[str, str, str]:
    """`entity/project/name` -> its three parts (DraftNotFoundError when it is not one)."""
    parts = spec.strip("/").split("/")
    if len(parts) != 3 or not all(parts) or ":" in spec:
        raise DraftNotFoundError(f"invalid draft {spec!r}: expected entity/project/name")
    return parts[0], parts[1], parts[2]


def find_draft(resolver: Any, write_dir: Path, spec: str, *, readonly: bool = False) -> Draft:
    """`entity/project/name` -> its materialized draft (DraftNotFoundError otherwise)."""
    entity, project, name = parse_spec(spec)
    root = draft_dir(write_dir, entity, project, name)
    if not is_materialized(root):
        raise DraftNotFoundError(f"no draft {spec} in {write_dir}")
    return Draft(root, entity, project, name, resolver, readonly=readonly)
