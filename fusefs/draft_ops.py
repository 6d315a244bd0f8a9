"""The DraftTree of a writable mount: FUSE calls on `/<entity>/<project>/<name>/...` (DESIGN §3).

Thin by design: every decision about drafts lives in the drafts engine, reached through one
object, `artifactfs.drafts.workspace.DraftWorkspace` (locating drafts, the namespace they add,
options, commits, stats); per-draft changes are the `Draft`'s own methods. This module only
translates FUSE vocabulary onto them: mount paths into (draft, draft path), stat dicts, xattr
names, errno values. Files are opened without an upcall (no_open) and found by path: the
fds behind reads and writes are draft_fds.py; which are open for writing, writers.py.

* The mount owns its write dir (the workspace takes it in `own()`) and answers `artifactfs
  commit` through the workspace's request thread; `shutdown()` commits every changed draft.
* Not supported in drafts, by decision (docs/SEMANTICS.md): symlinks and hard links (EPERM: a
  manifest holds files only), special files. Modes and times are kept on staged files while the
  draft lives but are not part of a version.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Any

from artifactfs.drafts.workspace import DIR_MODE, FILE_MODE, Draft, DraftWorkspace
from artifactfs.fusefs.draft_fds import PathFds, oserr, read_entry
from artifactfs.fusefs.draft_tree import DirEntry, DraftContext, Stat, split_path
from artifactfs.fusefs.writers import open_for_writing

XATTR_PREFIX = "user.artifact."
LOCK_WAIT = 30.0
"""Seconds a starting mount waits for a direct `artifactfs commit` to release the write dir."""
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Drafts:
    """DraftTree over a DraftWorkspace (see draft_tree for the contract)."""

    def __init__(self, ctx: DraftContext) -> None:
        self.ctx = ctx
        self.workspace = DraftWorkspace(
            ctx.resolver, ctx.config.write_dir, follow_ttl=ctx.config.metadata_ttl, log_results=True
        )
        self.workspace.invalidate = self._invalidate
        self.fds = PathFds()
        self.workspace.count_writers = self._writers
        self.workspace.own("mount", timeout=LOCK_WAIT)
        self.workspace.serve_requests()

    def _invalidate(self, paths: list[str]) -> None:
        """A commit changed these draft paths behind the kernel's back: forget their fds, then
        drop the kernel's pages and attributes."""
        self.fds.forget_named({"/".join(split_path(p)[:3]) for p in paths})
        if self.ctx.invalidate is not None:
            self.ctx.invalidate([f"/{p}" for p in paths])

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
    def _stat_dir(self, mtime: float | None = None) -> Stat:
        t = mtime if mtime is not None else self.ctx.mount_time
        return {
            "st_mode": stat.S_IFDIR | DIR_MODE,
            "st_nlink": 2,
            "st_size": 0,
            "st_mtime": t,
            "st_ctime": t,
            "st_atime": t,
            "st_uid": self.ctx.uid,
            "st_gid": self.ctx.gid,
        }

    def _stat_real(self, st: os.stat_result) -> Stat:
        return {
            "st_mode": st.st_mode,
            "st_nlink": st.st_nlink,
            "st_size": st.st_size,
            "st_mtime": st.st_mtime,
            "st_ctime": st.st_ctime,
            "st_atime": st.st_atime,
            "st_uid": self.ctx.uid,
            "st_gid": self.ctx.gid,
            "st_blocks": st.st_blocks,
        }

    def getattr(self, path: str, fh: int | None = None) -> Stat:
        parts = split_path(path)
        if len(parts) < 3:
            if self.workspace.has_dir(*parts):
                return self._stat_dir()
            raise oserr(errno.ENOENT, path)
        draft, rel = self._resolve(path)
        node = draft.lookup(rel)
        if node is None:
            raise oserr(errno.ENOENT, path)
        if node.staged is not None:
            return self._stat_real(node.staged)
        out = self._stat_dir(draft.base_mtime)
        if not node.is_dir:
            assert node.entry is not None
            out.update(st_mode=stat.S_IFREG | FILE_MODE, st_nlink=1, st_size=node.entry.size or 0)
        return out

    def readdir(self, path: str) -> list[DirEntry]:
        draft, rel = self._resolve(path)
        return [
            (name, stat.S_IFDIR if node.is_dir else stat.S_IFREG, 0)
            for name, node in draft.scandir(rel)
        ]

    def readlink(self, path: str) -> str:
        raise oserr(errno.EINVAL, path, "drafts hold no symlinks")

    # -- namespace ------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int) -> None:
        parts = split_path(path)
        if len(parts) < 3:
            self.workspace.make_dir(*parts)
        elif len(parts) == 3:
            self.workspace.create(*parts)
        else:
            self.workspace.check_names(*parts[:3])
            draft, rel = self._resolve(path)
            draft.mkdir(rel, mode)

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

    def rename(self, old: str, new: str) -> None:
        a, arel = self._resolve(old)
        b, brel = self._resolve(new)
        if a is not b:
            raise oserr(errno.EXDEV, new, "rename across drafts")
        if not arel or not brel:
            raise oserr(errno.EBUSY, old, "a draft directory itself cannot be renamed")
        a.rename(arel, brel)
        self.fds.forget(a, arel)
        self.fds.forget(a, brel)

    def symlink(self, path: str, target: str) -> None:
        raise oserr(errno.EPERM, path, "drafts hold files and directories only (no symlinks)")

    def chmod(self, path: str, mode: int) -> None:
        draft, rel = self._resolve(path)
        draft.chmod(rel, mode)

    def utimens(self, path: str, times: tuple[int, int] | None) -> None:
        draft, rel = self._resolve(path)
        draft.utimens(rel, None if times is None else _utime_ns(draft, rel, times))

    # -- files: opened without an upcall, found by path (draft_fds.py) -----------------------
    def create(self, path: str, mode: int, flags: int) -> int:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        self.fds.created(draft, rel, mode, flags)
        return 0  # no handle: under no_open the kernel sends no release for it

    def read(self, path: str, size: int, offset: int, fh: int | None) -> bytes:
        draft, rel = self._resolve(path)
        with self.fds.readable(draft, rel) as found:
            if isinstance(found, int):
                return os.pread(found, size, offset)
            return read_entry(draft, found, size, offset, path)

    def write(self, path: str, data: bytes, offset: int, fh: int | None) -> int:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        with self.fds.writable(draft, rel) as fd:
            return os.pwrite(fd, data, offset)

    def truncate(self, path: str, length: int, fh: int | None) -> None:
        draft, rel = self._resolve(path)
        if not rel:
            raise oserr(errno.EISDIR, path)
        draft.truncate(rel, length)  # by path: the same inode as any fd draft_fds holds

    def release(self, path: str, fh: int) -> None:
        return None  # no handles (see create)

    def fsync(self, path: str, datasync: int, fh: int | None) -> None:
        draft, rel = self._resolve(path)
        with self.fds.readable(draft, rel) as found:
            if isinstance(found, int):
                (os.fdatasync if datasync else os.fsync)(found)
        draft.fsync()

    # -- xattrs: commit options on the draft directory ------------------------------------------
    def _key(self, name: str) -> str | None:
        """`user.artifact.<key>` -> key (None: not one of ours)."""
        return name[len(XATTR_PREFIX) :] if name.startswith(XATTR_PREFIX) else None

    def getxattr(self, path: str, name: str) -> bytes:
        draft, rel = self._resolve(path)
        draft.node(rel)
        values = self.workspace.option_values(draft) if not rel else {}
        key = self._key(name)
        if key is not None and key in values:
            return values[key]
        raise oserr(errno.ENODATA, path)

    def listxattr(self, path: str) -> list[str]:
        draft, rel = self._resolve(path)
        draft.node(rel)
        return [XATTR_PREFIX + k for k in self.workspace.option_values(draft)] if not rel else []

    def setxattr(self, path: str, name: str, value: bytes, options: int) -> None:
        draft, rel = self._resolve(path)
        key = self._key(name)
        if rel or key not in self.workspace.option_keys:
            keys = ",".join(self.workspace.option_keys)
            why = f"settable: {XATTR_PREFIX}{{{keys}}} on the draft directory"
            raise oserr(errno.ENOTSUP, path, why)
        assert key is not None
        self.workspace.set_option(draft, key, value, label=name)

    def removexattr(self, path: str, name: str) -> None:
        draft, rel = self._resolve(path)
        key = self._key(name)
        if rel or key not in self.workspace.option_keys:
            raise oserr(errno.ENODATA, path)
        assert key is not None
        self.workspace.clear_option(draft, key)

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
            t = (st.st_atime_ns, st.st_mtime_ns)[i] if st is not None else time.time_ns()
        out.append(t)
    return out[0], out[1]
