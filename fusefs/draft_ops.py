"""The DraftTree of a writable mount: FUSE calls on `/<entity>/<project>/<name>/...` (DESIGN §3).

Thin by design: every decision about drafts lives in the drafts engine, reached through one
object, `artifactfs.drafts.workspace.DraftWorkspace` (locating drafts, the namespace they add,
options, commits, stats); per-draft changes are the `Draft`'s own methods. This module only
translates FUSE vocabulary onto them: mount paths into (draft, draft path), stat dicts, the
caller's owner, errno values. Files are opened without an upcall (no_open) and found by path:
the fds behind reads and writes are draft_fds.py; which are open for writing, writers.py;
xattr names, draft_xattrs.py.

* The mount owns its write dir (the workspace takes it in `own()`) and answers `artifactfs
  commit` through the workspace's request thread; `shutdown()` commits every changed draft of
  the mount's registry (drafts of another registry are left alone: EBUSY, binding.py).
* A draft is a local directory while it lives: owners (as the caller; chown as root), exact
  modes (the kernel applied the umask), nanosecond times, user xattrs, hard links, symlinks,
  fallocate. FIFOs, sockets and device files live while the draft does; a commit skips them.
* With `--write-cache`, writes are cached by the kernel (writeback.py); the duties that come
  with it (clearing suid/sgid on unprivileged writes and truncates) are done here.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Any

import mfusepy

from artifactfs.cache.references.file import local_file_of
from artifactfs.drafts.contents import stored_mode
from artifactfs.drafts.view import Node
from artifactfs.drafts.workspace import DIR_MODE, Draft, DraftWorkspace
from artifactfs.fusefs.draft_fds import PathFds, oserr, read_entry
from artifactfs.fusefs.draft_tree import DirEntry, DraftContext, Stat, split_path
from artifactfs.fusefs.draft_xattrs import DraftXattrs
from artifactfs.fusefs.fusebuf import write_to_fd
from artifactfs.fusefs.refgate import shown
from artifactfs.fusefs.writeback import Later
from artifactfs.fusefs.writers import open_for_writing

LOCK_WAIT = 30.0
"""Seconds a starting mount waits for a direct `artifactfs commit` to release the write dir."""
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
RENAME_NOREPLACE = 1
LINK_NOTIFY_WAIT = 0.5
"""Seconds a link waits for the kernel to hear that the existing name's nlink changed."""
NS = 1_000_000_000
_KIND = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK}


def _caller() -> tuple[int, int]:
    """(uid, gid) of the process whose request is being answered."""
    uid, gid, _pid = mfusepy.fuse_get_context()
    return uid, gid


def _drop_suid(fd: int) -> None:
    """What a disk does when an unprivileged caller writes or truncates a set-id file."""
    mode = os.fstat(fd).st_mode
    kill = mode & stat.S_ISUID
    if mode & stat.S_ISGID and mode & stat.S_IXGRP:
        kill |= stat.S_ISGID
    if kill:
        os.fchmod(fd, stat.S_IMODE(mode) & ~kill)


class Drafts:
    """DraftTree over a DraftWorkspace (see draft_tree for the contract)."""

    writable = True

    def __init__(self, ctx: DraftContext) -> None:
        self.ctx = ctx
        self.workspace = DraftWorkspace(
            ctx.resolver,
            ctx.config.write_dir,
            follow_ttl=ctx.config.metadata_ttl,
            log_results=True,
            serve_registry_only=True,
        )
        self.workspace.invalidate = self._invalidate
        self.fds = PathFds()
        self.xattrs = DraftXattrs(self.workspace)
        self.later = Later(self._refresh)
        self.workspace.count_writers = self._writers
        self.workspace.own("mount", timeout=LOCK_WAIT, mountpoint=ctx.mountpoint)
        self.workspace.serve_requests()

    def _invalidate(self, paths: list[str]) -> None:
        """A commit changed these draft paths behind the kernel's back: forget their fds, then
        drop the kernel's pages and attributes."""
        self.fds.forget_named({"/".join(split_path(p)[:3]) for p in paths})
        if self.ctx.invalidate is not None:
            self.ctx.invalidate([f"/{p}" for p in paths])

    def _refresh(self, path: str) -> None:
        if self.ctx.invalidate is not None:
            self.ctx.invalidate([path])

    def _writers(self, draft: Draft) -> int:
        """Files below the draft's directory open for writing right now, in any process: the
        kernel never tells the mount when a file is opened or closed (no_open)."""
        return open_for_writing(os.path.join(self.ctx.mountpoint, draft.qualified_name))

    def _resolve(self, path: str) -> tuple[Draft, str]:
        """Mount path -> (its draft, the path inside the draft; '' for the draft directory)."""
        parts = split_path(path)
        if len(parts) < 3:
            raise oserr(errno.ENOENT, path)
        return self.workspace.draft(parts[0], parts[1], parts[2]), "/".join(parts[3:])

    # -- attributes -----------------------------------------------------------------------------
    def _stat_dir(self, t_ns: int) -> Stat:
        return {
            "st_mode": stat.S_IFDIR | DIR_MODE,
            "st_nlink": 2,
            "st_size": 0,
            "st_mtime": t_ns,
            "st_ctime": t_ns,
            "st_atime": t_ns,
            "st_uid": self.ctx.uid,
            "st_gid": self.ctx.gid,
        }

    @staticmethod
    def _stat_real(st: os.stat_result) -> Stat:
        return {
            "st_mode": st.st_mode,
            "st_nlink": st.st_nlink,
            "st_size": st.st_size,
            "st_mtime": st.st_mtime_ns,
            "st_ctime": st.st_ctime_ns,
            "st_atime": st.st_atime_ns,
            "st_uid": st.st_uid,
            "st_gid": st.st_gid,
            "st_blocks": st.st_blocks,
            "st_blksize": st.st_blksize,
            "st_rdev": st.st_rdev,  # a device node's numbers
        }

    def _stat_node(self, draft: Draft, node: Node) -> Stat:
        if node.staged is not None:
            out = self._stat_real(node.staged)
            out["st_ino"] = node.ino
            return out
        out = self._stat_dir(draft.base_mtime_ns)
        out["st_ino"] = node.ino
        if not node.is_dir:
            assert node.entry is not None
            size = node.entry.size or 0
            out.update(
                st_mode=stat.S_IFREG | stored_mode(node.entry),
                st_nlink=1,
                st_size=size,
                st_blocks=(size + 511) // 512,
            )
            local = local_file_of(node.entry.ref)
            if local is not None:  # a file:// reference: its own owner and mode (refgate.py);
                shown(out, local)["st_mode"] |= stat.S_IWUSR  # the draft's copy stays writable
        return out

    def getattr(self, path: str, fh: int | None = None) -> Stat:
        parts = split_path(path)
        if len(parts) < 3:
            if self.workspace.has_dir(*parts):
                return self._stat_dir(int(self.ctx.mount_time * NS))
            raise oserr(errno.ENOENT, path)
        draft, rel = self._resolve(path)
        node = draft.lookup(rel)
        if node is None:
            raise oserr(errno.ENOENT, path)
        return self._stat_node(draft, node)

    def readdir(self, path: str) -> list[DirEntry]:
        draft, rel = self._resolve(path)
        return [(name, _KIND[node.kind], 0) for name, node in draft.scandir(rel)]

    def readlink(self, path: str) -> str:
        draft, rel = self._resolve(path)
        return draft.readlink(rel)

    # -- namespace ------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int) -> None:
        parts = split_path(path)
        if len(parts) < 3:
            self.workspace.make_dir(*parts)
            return
        if len(parts) == 3:
            draft = self.workspace.create(*parts)
            draft.chmod("", mode & 0o7777)
            if os.geteuid() == 0:
                draft.chown("", *_caller())
            return
        self.workspace.check_names(*parts[:3])
        draft, rel = self._resolve(path)
        draft.mkdir(rel, mode, _caller())

    def rmdir(self, path: str) -> None:
        parts = split_path(path)
        if len(parts) < 3:
            self.workspace.remove_dir(*parts)
            return
        draft, rel = self._resolve(path)
        if rel:
            draft.rmdir(rel)
        else:
            self.workspace.discard(draft)
        self.fds.forget(draft, rel)

    def unlink(self, path: str) -> None:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        draft.unlink(rel)
        self.fds.forget(draft, rel)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        a, arel = self._resolve(old)
        b, brel = self._resolve(new)
        if flags & ~RENAME_NOREPLACE:
            raise oserr(errno.EINVAL, old, "rename flags other than RENAME_NOREPLACE")
        if a is not b:
            raise oserr(errno.EXDEV, new, "rename across drafts")
        if not arel or not brel:
            raise oserr(errno.EBUSY, old, "a draft directory itself cannot be renamed")
        a.rename(arel, brel, noreplace=bool(flags & RENAME_NOREPLACE))
        self.fds.forget(a, arel)
        self.fds.forget(a, brel)

    def symlink(self, path: str, target: str) -> None:
        draft, rel = self._resolve(path)
        draft.symlink(rel, target, _caller())

    def link(self, path: str, target: str) -> None:
        a, arel = self._resolve(target)
        b, brel = self._resolve(path)
        if a is not b:
            raise oserr(errno.EXDEV, path, "hard link across drafts")
        a.link(arel, brel)
        # libfuse gives each name a kernel inode of its own: the existing name's cached link
        # count is now stale (bounded wait: the notification runs on another thread)
        self.later.add(target, wait=LINK_NOTIFY_WAIT)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        draft, rel = self._resolve(path)
        draft.mknod(rel, mode, _caller(), dev)

    def chmod(self, path: str, mode: int) -> None:
        draft, rel = self._resolve(path)
        draft.chmod(rel, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        draft, rel = self._resolve(path)
        draft.chown(rel, uid, gid)

    def utimens(self, path: str, times: tuple[int, int] | None) -> None:
        draft, rel = self._resolve(path)
        draft.utimens(rel, None if times is None else _utime_ns(draft, rel, times))

    # -- files: opened without an upcall, found by path (draft_fds.py) -----------------------
    def create(self, path: str, mode: int, flags: int) -> int:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        self.fds.created(draft, rel, mode, flags, _caller())
        return 0  # no handle: under no_open the kernel sends no release for it

    def read(self, path: str, size: int, offset: int, fh: int | None) -> bytes:
        draft, rel = self._resolve(path)
        with self.fds.readable(draft, rel) as found:
            if isinstance(found, int):
                return os.pread(found, size, offset)
            return read_entry(draft, found, size, offset, path)

    def write(
        self, path: str, data: bytes, offset: int, fh: int | None, cached: bool = True
    ) -> int:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        with self.fds.writable(draft, rel) as fd:
            n = os.pwrite(fd, data, offset)
            if not cached:  # sent through by the kernel: maybe an unprivileged write
                _drop_suid(fd)
            return n

    def write_buf(self, path: str, buf: Any, offset: int, cached: bool = True) -> int:
        """`write` for libfuse's buffers: copied into the staged file in C (fusebuf)."""
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        with self.fds.writable(draft, rel) as fd:
            n = write_to_fd(buf, fd, offset)
            if not cached:
                _drop_suid(fd)
            return n

    def truncate(self, path: str, length: int, fh: int | None) -> None:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        draft.truncate(rel, length)  # by path: the same inode as any fd draft_fds holds
        if _caller()[0] != 0:
            with self.fds.writable(draft, rel) as fd:
                _drop_suid(fd)

    def fallocate(self, path: str, mode: int, offset: int, length: int) -> None:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        draft.fallocate(rel, mode, offset, length)

    def release(self, path: str, fh: int) -> None:
        return None  # no handles (see create)

    def fsync(self, path: str, datasync: int, fh: int | None) -> None:
        draft, rel = self._resolve(path)
        with self.fds.readable(draft, rel) as found:
            if isinstance(found, int):
                (os.fdatasync if datasync else os.fsync)(found)
        draft.fsync()

    # -- xattrs (draft_xattrs.py) ---------------------------------------------------------------
    def getxattr(self, path: str, name: str) -> bytes:
        draft, rel = self._resolve(path)
        return self.xattrs.get(draft, rel, name, path)

    def listxattr(self, path: str) -> list[str]:
        draft, rel = self._resolve(path)
        return self.xattrs.list(draft, rel)

    def setxattr(self, path: str, name: str, value: bytes, options: int) -> None:
        draft, rel = self._resolve(path)
        self.xattrs.set(draft, rel, name, value, options, path)

    def removexattr(self, path: str, name: str) -> None:
        draft, rel = self._resolve(path)
        self.xattrs.remove(draft, rel, name, path)

    # -- listings merged into the read side ------------------------------------------------------
    def draft_names(self, entity: str, project: str) -> list[str]:
        return self.workspace.draft_names(entity, project)

    def extra_entities(self) -> list[str]:
        return self.workspace.entities()

    def extra_projects(self, entity: str) -> list[str]:
        return self.workspace.projects(entity)

    # -- lifecycle -------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {"enabled": True, **self.workspace.stats()}

    def shutdown(self) -> None:
        """Clean unmount: commit every changed draft (progress in the log); failures keep
        their drafts for the next mount or `artifactfs commit`."""
        self.workspace.shutdown()


def _utime_ns(draft: Draft, rel: str, times: tuple[int, int]) -> tuple[int, int]:
    """mfusepy folds a timespec into nanoseconds, so `touch` (UTIME_NOW) and UTIME_OMIT arrive
    as tiny magic values: turn them into real times instead of 1970."""
    out = []
    current = draft.lookup(rel)
    for i, t in enumerate(times):
        if t == UTIME_NOW:
            t = time.time_ns()
        elif t == UTIME_OMIT:
            st = current.staged if current is not None else None
            t = (st.st_atime_ns, st.st_mtime_ns)[i] if st is not None else draft.base_mtime_ns
        out.append(t)
    return out[0], out[1]
