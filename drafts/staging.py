"""The staged layer of a draft: a real directory tree on local disk (`files/`), plus `tmp/`.

Everything a shell makes in a draft is made here, for real: files, directories, symlinks, hard
links, owners, modes, nanosecond times and user xattrs are the local file system's own, so a
draft behaves like a local directory because it is one. What is not here yet is the stored layer
(overlay.py): base files of `latest` nobody touched, read lazily through the cache.

Two kinds of staged regular files:
* a *copied* file holds its bytes (created in the draft, or copied up at its first data change);
* a *placeholder* holds only metadata: a sparse file of the stored entry's size whose xattr
  `user.artifactfs.stored` names that entry (digest, size, ref, extra). `chmod`, `chown`,
  `touch`, `setfattr` or `ln` of an unchanged stored file make one (a metadata-only copy-up, as
  overlayfs' metacopy): no fetch, and the inode then carries owners, links and xattrs like any
  other. Its bytes are still read from the store; the first data change fills it in place
  (bytes copied in, fdatasync, marker removed last, so a crash leaves a placeholder, never a
  half-filled file that claims to be complete). A staging file system without user xattrs
  gets full copy-ups instead.

Every operation goes through a descriptor of `files/` (the `*at` system calls), so draft paths
work up to PATH_MAX whatever the write dir's own path length, and nothing ever follows a
symlink of the draft on the host: the daemon may run as root, a draft's symlinks are the user's.

Apart from the Draft because it is the one place that knows how staged entries sit on disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactfs.drafts.hostfs import copy_fd, fallocate, oserr, parent_of
from artifactfs.resolver.manifest import ManifestEntry

log = logging.getLogger(__name__)

MARK = "user.artifactfs.stored"
"""xattr of a placeholder: the JSON of the stored entry whose bytes it stands for."""
INO = "user.artifactfs.ino"
"""xattr of an entry staged from the stored layer: the inode number it showed there, kept so
the number a program saw does not change under it (git compares them after a link)."""
RESERVED_PREFIX = "user.artifactfs."
"""xattr names the staging layer keeps for itself (hidden from and refused to users)."""
PATH_LIMIT = 4000
"""Absolute host paths longer than this are reached through a descriptor instead."""


@dataclass(frozen=True)
class StagedEntry:
    """One non-directory entry of the staged tree, as a commit sees it."""

    rel: str
    st: os.stat_result
    stored: ManifestEntry | None
    """For placeholders: the stored entry whose bytes the file stands for."""

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)

    @property
    def is_regular(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)


class StagingArea:
    """`files/` and `tmp/` of one draft dir, reached through directory descriptors."""

    def __init__(self, root: Path) -> None:
        self.files = root / "files"
        self.tmp = root / "tmp"
        self._fd: int | None = None
        self._tmp_fd: int | None = None
        self._fd_lock = threading.Lock()
        self.xattrs_ok: bool | None = None
        """Does the staging file system keep user xattrs? (None: not probed yet)."""

    # -- descriptors ----------------------------------------------------------------------------
    def create(self) -> None:
        self.files.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        os.chmod(self.files, 0o755)

    def exists(self) -> bool:
        return self._fd is not None or self.files.is_dir()

    def fd(self) -> int:
        """A descriptor of `files/` (FileNotFoundError before the draft is materialized)."""
        if self._fd is None:
            with self._fd_lock:
                if self._fd is None:
                    self._fd = os.open(self.files, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd

    def tmp_fd(self) -> int:
        if self._tmp_fd is None:
            with self._fd_lock:
                if self._tmp_fd is None:
                    self.tmp.mkdir(exist_ok=True)
                    self._tmp_fd = os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._tmp_fd

    def close(self) -> None:
        with self._fd_lock:
            for fd in (self._fd, self._tmp_fd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fd = self._tmp_fd = None

    def path(self, rel: str) -> Path:
        """The host path of draft path `rel` ('' = the staged root), for short paths and tests."""
        return self.files / rel if rel else self.files

    @staticmethod
    def _at(rel: str) -> str:
        return rel or "."

    # -- queries --------------------------------------------------------------------------------
    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.stat(self._at(rel), dir_fd=self.fd(), follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, rel: str) -> list[str]:
        try:
            fd = os.open(
                self._at(rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self.fd()
            )
        except (FileNotFoundError, NotADirectoryError):
            return []
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def readlink(self, rel: str) -> str:
        return os.readlink(rel, dir_fd=self.fd())

    def marks(self, rel: str, st: os.stat_result) -> tuple[ManifestEntry | None, int]:
        """(the stored entry a placeholder stands for, else None; the inode number to show).
        One listxattr per file or directory (block counts cannot tell a placeholder: an xattr
        block counts as one); a getxattr only where a mark is."""
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or self.xattrs_ok is False:
            return None, st.st_ino  # links, FIFOs, sockets, devices: never marked, never opened
        try:
            names = self._xattr_call(rel, os.listxattr)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.ENOENT, errno.ENOTDIR):
                return None, st.st_ino
            raise
        if not names or (MARK not in names and INO not in names):
            return None, st.st_ino
        entry = None
        if MARK in names and stat.S_ISREG(st.st_mode):
            entry = ManifestEntry.from_json(rel, json.loads(self._getxattr(rel, MARK)))
        ino = int(self._getxattr(rel, INO)) if INO in names else st.st_ino
        return entry, ino

    def stored_entry(self, rel: str, st: os.stat_result) -> ManifestEntry | None:
        return self.marks(rel, st)[0]

    def keep_ino(self, rel: str, ino: int, fd: int | None = None) -> None:
        """Remember on the staged entry `rel` the inode number it showed while stored."""
        if self.xattrs_ok is False:
            return
        try:
            if fd is not None:
                os.setxattr(fd, INO, str(ino).encode())
            else:
                self._xattr_call(rel, os.setxattr, INO, str(ino).encode())
        except OSError as e:
            if e.errno != errno.ENOTSUP:
                raise
            self.xattrs_ok = False

    # -- creating entries -----------------------------------------------------------------------
    def open(self, rel: str, flags: int, mode: int = 0o600) -> int:
        return os.open(rel, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.fd())

    def mkdir(self, rel: str, mode: int) -> None:
        os.mkdir(rel, 0o700, dir_fd=self.fd())
        os.chmod(rel, mode, dir_fd=self.fd())

    def ensure_dir(
        self,
        rel: str,
        mode: int = 0o755,
        times_ns: tuple[int, int] | None = None,
        ino_of: Any = None,
    ) -> None:
        """Make `rel` and its missing parents real directories (mode, times of the stored
        layer they stand for); existing ones are left as they are."""
        if not rel:
            return
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            st = self.lstat(sub)
            if st is not None:
                if not stat.S_ISDIR(st.st_mode):
                    raise oserr(errno.ENOTDIR, sub)
                continue
            parent_times = self._times(parent_of(sub))
            self.mkdir(sub, mode)
            if ino_of is not None:
                self.keep_ino(sub, ino_of(sub))
            if times_ns is not None:
                self.utime(sub, times_ns)
            self._restore_times(parent_of(sub), parent_times)

    def symlink(self, target: str, rel: str) -> None:
        os.symlink(target, rel, dir_fd=self.fd())

    def link(self, src: str, dst: str) -> None:
        os.link(src, dst, src_dir_fd=self.fd(), dst_dir_fd=self.fd(), follow_symlinks=False)

    def install(
        self, rel: str, source: str | os.PathLike[str] | None, mode: int, ino: int | None = None
    ) -> None:
        """Stage a copy of `source` (None: an empty file) at `rel`, atomically, via tmp/
        (`ino`: the inode number it showed while stored)."""
        tmp = f"up-{uuid.uuid4().hex}"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=self.tmp_fd()
        )
        try:
            if source is not None:
                with open(source, "rb") as src:
                    copy_fd(src.fileno(), fd)
            os.fchmod(fd, mode)
            if ino is not None:
                self.keep_ino(tmp, ino, fd)
            os.close(fd)
            fd = -1
            os.rename(tmp, rel, src_dir_fd=self.tmp_fd(), dst_dir_fd=self.fd())
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self.tmp_fd())
            raise

    def place(
        self, rel: str, entry: ManifestEntry, mode: int, times_ns: tuple[int, int], ino: int
    ) -> bool:
        """Make a placeholder of stored `entry` at `rel` (see the module docstring); False when
        the staging file system cannot keep the marker (the caller copies the bytes up)."""
        if self.xattrs_ok is False:
            return False
        tmp = f"meta-{uuid.uuid4().hex}"
        tfd = self.tmp_fd()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=tfd)
        try:
            os.ftruncate(fd, entry.size or 0)
            try:
                os.setxattr(fd, MARK, json.dumps(entry.to_json()).encode())
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.ENOSPC, errno.E2BIG, errno.ERANGE):
                    raise
                log.info("staging keeps no xattr marker (%s): full copy-up instead", e)
                if e.errno == errno.ENOTSUP:
                    self.xattrs_ok = False
                os.close(fd)
                fd = -1
                os.unlink(tmp, dir_fd=tfd)
                return False
            self.xattrs_ok = True
            os.setxattr(fd, INO, str(ino).encode())
            os.fchmod(fd, mode)
            os.utime(fd, ns=times_ns)
            os.close(fd)
            fd = -1
            parent_times = self._times(parent_of(rel))
            os.rename(tmp, rel, src_dir_fd=tfd, dst_dir_fd=self.fd())
            self._restore_times(parent_of(rel), parent_times)
            return True
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=tfd)
            raise

    def fill(self, rel: str, source: str | os.PathLike[str] | None) -> None:
        """Turn the placeholder at `rel` into a copied file holding `source`'s bytes (None: it
        is being truncated to nothing). Same inode: hard links, owners and xattrs stay."""
        fd = self.open(rel, os.O_WRONLY)
        try:
            st = os.fstat(fd)
            if source is not None:
                with open(source, "rb") as src:
                    copy_fd(src.fileno(), fd)
            else:
                os.ftruncate(fd, 0)
            os.fdatasync(fd)
            os.removexattr(fd, MARK)  # last: until here the file still reads as the entry
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)

    # -- changing entries -----------------------------------------------------------------------
    def unlink(self, rel: str) -> None:
        os.unlink(rel, dir_fd=self.fd())

    def rmdir(self, rel: str) -> None:
        os.rmdir(rel, dir_fd=self.fd())

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst, src_dir_fd=self.fd(), dst_dir_fd=self.fd())

    def chmod(self, rel: str, mode: int) -> None:
        st = self.lstat(rel)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise oserr(errno.EOPNOTSUPP, rel)  # never follow a user's symlink as root
        os.chmod(self._at(rel), mode, dir_fd=self.fd())

    def chown(self, rel: str, uid: int, gid: int) -> None:
        os.chown(self._at(rel), uid, gid, dir_fd=self.fd(), follow_symlinks=False)

    def utime(self, rel: str, times_ns: tuple[int, int] | None) -> None:
        if times_ns is None:
            os.utime(self._at(rel), dir_fd=self.fd(), follow_symlinks=False)
        else:
            os.utime(self._at(rel), ns=times_ns, dir_fd=self.fd(), follow_symlinks=False)

    def truncate(self, rel: str, length: int) -> None:
        fd = self.open(rel, os.O_WRONLY)
        try:
            os.ftruncate(fd, length)
        finally:
            os.close(fd)

    def fallocate(self, rel: str, mode: int, offset: int, length: int) -> None:
        fd = self.open(rel, os.O_WRONLY)
        try:
            fallocate(fd, mode, offset, length)
        finally:
            os.close(fd)

    def _times(self, rel: str) -> tuple[int, int] | None:
        st = self.lstat(rel)
        return None if st is None else (st.st_atime_ns, st.st_mtime_ns)

    def _restore_times(self, rel: str, times: tuple[int, int] | None) -> None:
        if times is not None:
            with contextlib.suppress(OSError):
                self.utime(rel, times)

    # -- user xattrs ----------------------------------------------------------------------------
    def _xattr_call(self, rel: str, fn: Any, *args: Any) -> Any:
        """Run an os xattr function on `rel` without following a symlink: by host path when
        it is short, else through a descriptor (os xattr calls take no dir_fd)."""
        host = str(self.path(rel))
        if len(host) < PATH_LIMIT:
            return fn(host, *args, follow_symlinks=False)
        fd = self.open(rel, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return fn(fd, *args)
        finally:
            os.close(fd)

    def _getxattr(self, rel: str, name: str) -> bytes:
        return bytes(self._xattr_call(rel, os.getxattr, name))

    def getxattr(self, rel: str, name: str) -> bytes:
        if name.startswith(RESERVED_PREFIX):
            raise oserr(errno.ENODATA, rel)
        return self._getxattr(rel, name)

    def listxattr(self, rel: str) -> list[str]:
        names = self._xattr_call(rel, os.listxattr)
        return [n for n in names if n.startswith("user.") and not n.startswith(RESERVED_PREFIX)]

    def setxattr(self, rel: str, name: str, value: bytes, flags: int) -> None:
        if name.startswith(RESERVED_PREFIX):
            raise oserr(errno.EPERM, rel)
        self._xattr_call(rel, os.setxattr, name, value, flags)

    def removexattr(self, rel: str, name: str) -> None:
        if name.startswith(RESERVED_PREFIX):
            raise oserr(errno.ENODATA, rel)
        self._xattr_call(rel, os.removexattr, name)

    # -- walking (what a commit sees) -----------------------------------------------------------
    def walk(self) -> Iterator[tuple[str, list[str], list[StagedEntry]]]:
        """Every staged directory, top-down: (draft path, subdirectory names, other entries).
        Symlinks are entries, never followed; placeholders carry their stored entry."""
        if not self.exists():
            return
        todo = [""]
        while todo:
            rel = todo.pop()
            try:
                dfd = os.open(
                    self._at(rel), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self.fd()
                )
            except (FileNotFoundError, NotADirectoryError):
                continue
            dirs: list[str] = []
            others: list[StagedEntry] = []
            try:
                with os.scandir(dfd) as it:
                    for e in it:
                        child = f"{rel}/{e.name}" if rel else e.name
                        st = e.stat(follow_symlinks=False)
                        if stat.S_ISDIR(st.st_mode):
                            dirs.append(e.name)
                        else:
                            others.append(StagedEntry(child, st, self.stored_entry(child, st)))
            finally:
                os.close(dfd)
            yield rel, dirs, others
            todo.extend(f"{rel}/{d}" if rel else d for d in reversed(dirs))

    def dirs(self) -> Iterator[str]:
        """Every staged directory (draft paths), empty ones included."""
        for rel, dirnames, _ in self.walk():
            for d in dirnames:
                yield f"{rel}/{d}" if rel else d

    def entries(self) -> Iterator[StagedEntry]:
        """Every staged non-directory entry (regular files, placeholders, symlinks)."""
        for _rel, _dirs, others in self.walk():
            yield from others

    def host_path(self, rel: str) -> str:
        """A host path naming the staged file `rel` that any process can open: the path
        itself, or for paths longer than the host allows, a hard link made in tmp/."""
        host = str(self.path(rel))
        if len(host) < PATH_LIMIT:
            return host
        alias = f"long-{uuid.uuid4().hex}"
        os.link(rel, alias, src_dir_fd=self.fd(), dst_dir_fd=self.tmp_fd(), follow_symlinks=False)
        return str(self.tmp / alias)

    def open_read(self, rel: str) -> int:
        return self.open(rel, os.O_RDONLY)
