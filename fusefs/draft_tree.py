"""The seam between the mount's routing and the drafts' callbacks (DESIGN §3, issue 5).

On one side, operations.py and writes.py route every FUSE call by its path (tree.py); on the
other, draft_ops.py answers the calls on draft paths by translating them onto the drafts engine
(`artifactfs.drafts.workspace.DraftWorkspace`). This protocol is the whole contract, so each
side can change its internals without touching the other.

What the drafts side can rely on (operations.py and writes.py guarantee it):

* Routing. A path `/<entity>/<project>/<name>` whose third component has NO colon is a draft;
  every FUSE call on that path or anything below it goes to the DraftTree, with the full mount
  path (leading `/`, no trailing `/`). Version paths (`name:vN/...`, `name:alias`), the
  control directory `/.artifactfs` and registry entities/projects never reach it, except:
    - `getattr`/`readdir` of `/<entity>` or `/<entity>/<project>` that the registry does not
      know are asked of the DraftTree (so `mkdir` of a new entity/project can be shown);
    - `mkdir`/`rmdir` at depth 1 or 2 go to the DraftTree (EROFS from the null implementation);
    - project listings add `draft_names(entity, project)`, the root listing adds
      `extra_entities()`, an entity listing adds `extra_projects(entity)` (duplicates removed).
* `rename(old, new)` reaches the DraftTree only when both paths are draft paths; a version path
  on either side gets EROFS, anything else EXDEV (so `mv` falls back to copy + delete).
* Files are opened without an upcall (the connection's no_open, operations.py): there is no
  `open`, and read/write/fsync/truncate/getattr of a file that was not made by `create` come
  with `fh=None` and must find the file by its path (draft_fds.py). The non-zero integer you
  return from `create` is handed back unchanged to read/write/release/fsync/truncate/getattr
  of that open file, and `release` comes only for those. Open flags never arrive: O_TRUNC of
  an existing file comes as `truncate(path, 0, None)`, O_APPEND as writes at the end the
  kernel knows. The kernel keeps draft files' pages across opens (it sees every change made
  through the mount); a commit drops them for the paths it touched (`ctx.invalidate`).
* Errors: raise `OSError(errno.X, message)` (the drafts engine's errors are such OSErrors; or
  mfusepy's FuseOSError); any other exception is logged with its traceback to the mount log and
  answered EIO (guard.py). Nothing is printed.
* `getattr` returns a fusepy-style dict (`st_mode`, `st_size`, `st_nlink`, `st_mtime`,
  `st_ctime`, `st_atime`, `st_uid`, `st_gid`); times are integer nanoseconds (or float
  seconds). `readdir` returns DirEntry tuples (name, st_mode type bits, 0), without `.`, `..`.
* `writable`: True when the tree takes writes. With `--write-cache` the connection asks for the
  kernel's write-back cache (writeback.py): writes arrive as big page write-backs
  (`cached=True`), and only a write the kernel sent through (an unprivileged write to a
  suid/sgid file, O_DIRECT) comes with `cached=False`; without it every write(2) arrives as
  itself (`cached=False`). Owners of new entries are the caller's (`fuse_get_context`).
* `stats()` is merged into `MOUNT/.artifactfs/stats.json` under the key "drafts" (pending
  commits go there). `shutdown()` is called once on clean unmount (fusermount -u, SIGTERM,
  Ctrl-C, `artifactfs unmount`), before the process exits: commit there.
* The drafts object is built by serve.build as `artifactfs.fusefs.draft_ops.Drafts(ctx)` with a
  `DraftContext`, or `ReadOnlyDrafts(ctx)` for a read-only mount. The kernel may cache
  attributes and lookups of any path for `ctx.attr_timeout` seconds (the global libfuse
  entry/attr timeout), and it sees changes made through the mount at once; changes made behind
  its back (a commit) are announced through `ctx.invalidate`.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.settings import Config

Stat = dict[str, Any]
DirEntry = tuple[str, int, int]
"""(name, st_mode type bits, 0): the kernel's d_type, so `find`/`os.walk` need no stat."""


def split_path(path: str) -> list[str]:
    """`/a/b/c` -> ["a", "b", "c"]; `/` -> []."""
    return [p for p in path.split("/") if p]


def is_draft_path(path: str) -> bool:
    """True when `path` is a draft directory or anything below one (3rd part has no colon)."""
    parts = split_path(path)
    return len(parts) >= 3 and ":" not in parts[2] and not parts[0].startswith(".")


@dataclass
class DraftContext:
    """What the mount hands the drafts side when it starts."""

    resolver: Resolver
    config: Config
    mountpoint: str
    uid: int
    gid: int
    attr_timeout: float
    mount_time: float
    invalidate: Callable[[list[str]], None] | None = None
    """Drop the kernel's cached attributes/entries of these mount paths (set by the mount).

    WHY: libfuse's high-level API has one global attr/entry timeout, long for the immutable
    versions; a commit changes draft paths behind the kernel's back, so it must say so."""


@runtime_checkable
class DraftTree(Protocol):
    """FUSE operations below draft paths, plus the few listings the read side merges in."""

    writable: bool

    # -- tree -----------------------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> Stat: ...
    def readdir(self, path: str) -> list[DirEntry]: ...
    def readlink(self, path: str) -> str: ...
    def mkdir(self, path: str, mode: int) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def rename(self, old: str, new: str, flags: int = 0) -> None: ...
    def symlink(self, path: str, target: str) -> None: ...
    def link(self, path: str, target: str) -> None:
        """A hard link at `path` to the existing `target` (both in one draft)."""
        ...

    def mknod(self, path: str, mode: int, dev: int) -> None: ...
    def chmod(self, path: str, mode: int) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...
    def utimens(self, path: str, times: tuple[int, int] | None) -> None:
        """`times` = (atime_ns, mtime_ns) or None for "now" (mfusepy use_ns)."""
        ...

    # -- files (fh None: opened without an upcall, find the file by path) ------------------------
    def create(self, path: str, mode: int, flags: int) -> int: ...
    def read(self, path: str, size: int, offset: int, fh: int | None) -> bytes: ...
    def write(
        self, path: str, data: bytes, offset: int, fh: int | None, cached: bool = True
    ) -> int: ...
    def write_buf(self, path: str, buf: Any, offset: int, cached: bool = True) -> int:
        """`write` with libfuse's fuse_bufvec (copy it with fusebuf.write_to_fd)."""
        ...

    def truncate(self, path: str, length: int, fh: int | None) -> None: ...
    def fallocate(self, path: str, mode: int, offset: int, length: int) -> None: ...
    def release(self, path: str, fh: int) -> None: ...
    def fsync(self, path: str, datasync: int, fh: int | None) -> None: ...

    # -- xattrs (user xattrs; commit options user.artifact.commit.* on the draft dir) ----------
    def getxattr(self, path: str, name: str) -> bytes: ...
    def setxattr(self, path: str, name: str, value: bytes, options: int) -> None: ...
    def listxattr(self, path: str) -> list[str]: ...
    def removexattr(self, path: str, name: str) -> None: ...

    # -- merged into the read side's listings --------------------------------------------------
    def draft_names(self, entity: str, project: str) -> list[str]:
        """Drafts to list in a project: one per existing collection plus new ones (§2)."""
        ...

    def extra_entities(self) -> list[str]: ...
    def extra_projects(self, entity: str) -> list[str]: ...

    # -- lifecycle ------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]: ...
    def shutdown(self) -> None:
        """Called once on clean unmount: commit changed drafts here."""
        ...


def _enoent(path: str) -> OSError:
    return OSError(errno.ENOENT, f"no such draft path {path}")


def _erofs(path: str) -> OSError:
    return OSError(errno.EROFS, f"drafts are not enabled in this mount: {path}")


class ReadOnlyDrafts:
    """The null DraftTree: no drafts listed, nothing below a draft path, every write EROFS.

    Used whenever the mount is read-only (`artifactfs mount --read-only`).
    """

    writable = False

    def __init__(self, ctx: DraftContext | None = None) -> None:
        self.ctx = ctx

    def getattr(self, path: str, fh: int | None = None) -> Stat:
        raise _enoent(path)

    def readdir(self, path: str) -> list[DirEntry]:
        raise _enoent(path)

    def readlink(self, path: str) -> str:
        raise _enoent(path)

    def mkdir(self, path: str, mode: int) -> None:
        raise _erofs(path)

    def rmdir(self, path: str) -> None:
        raise _erofs(path)

    def unlink(self, path: str) -> None:
        raise _erofs(path)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        raise _erofs(old)

    def symlink(self, path: str, target: str) -> None:
        raise _erofs(path)

    def link(self, path: str, target: str) -> None:
        raise _erofs(path)

    def mknod(self, path: str, mode: int, dev: int) -> None:
        raise _erofs(path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        raise _erofs(path)

    def fallocate(self, path: str, mode: int, offset: int, length: int) -> None:
        raise _erofs(path)

    def write_buf(self, path: str, buf: Any, offset: int, cached: bool = True) -> int:
        raise _erofs(path)

    def chmod(self, path: str, mode: int) -> None:
        raise _erofs(path)

    def utimens(self, path: str, times: tuple[int, int] | None) -> None:
        raise _erofs(path)

    def create(self, path: str, mode: int, flags: int) -> int:
        raise _erofs(path)

    def read(self, path: str, size: int, offset: int, fh: int | None) -> bytes:
        raise _enoent(path)

    def write(
        self, path: str, data: bytes, offset: int, fh: int | None, cached: bool = True
    ) -> int:
        raise _erofs(path)

    def truncate(self, path: str, length: int, fh: int | None) -> None:
        raise _erofs(path)

    def release(self, path: str, fh: int) -> None:
        return None

    def fsync(self, path: str, datasync: int, fh: int | None) -> None:
        return None

    def getxattr(self, path: str, name: str) -> bytes:
        raise _enoent(path)

    def setxattr(self, path: str, name: str, value: bytes, options: int) -> None:
        raise _erofs(path)

    def listxattr(self, path: str) -> list[str]:
        raise _enoent(path)

    def removexattr(self, path: str, name: str) -> None:
        raise _erofs(path)

    def draft_names(self, entity: str, project: str) -> list[str]:
        return []

    def extra_entities(self) -> list[str]:
        return []

    def extra_projects(self, entity: str) -> list[str]:
        return []

    def stats(self) -> dict[str, Any]:
        return {"enabled": False}

    def shutdown(self) -> None:
        return None
