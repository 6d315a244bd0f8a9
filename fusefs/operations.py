"""The mfusepy callbacks: route each path (fusefs.tree) and answer from the catalog, the cache or
the drafts side.

Error policy (issue 4): unknown names -> ENOENT; writes into versions, aliases or the namespace
-> EROFS; backend failures and digest mismatches -> EIO with the cause in the mount log. Every
callback goes through `_guard`, so no exception ever reaches libfuse as a traceback on the user's
terminal; only unexpected ones are logged with a traceback, and only to the log.

Caching (DESIGN §2, §7): version files are opened with `keep_cache` so the kernel keeps their
pages across opens (they never change); the global entry/attr timeouts are long (set by
mount.py) because everything with a name in a version is immutable, while alias symlinks stay
fresh anyway: the kernel does not cache symlink targets (no FUSE_CAP_CACHE_SYMLINKS), so every
path walk through `name:latest` calls `readlink`, which answers from the registry's TTL cache.
Directory listings are never cached by the kernel here, so new versions and moved aliases show
up after `--ttl` seconds without a remount.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy

from artifactfs.errors import ArtifactFSError, BackendError, DigestMismatchError
from artifactfs.fusefs import fusebuf, tree
from artifactfs.fusefs.catalog import Catalog, NotFound, Unavailable, VersionView
from artifactfs.fusefs.control import ControlDir
from artifactfs.fusefs.draft_tree import DraftTree, Stat
from artifactfs.fusefs.openfiles import OpenFiles
from artifactfs.fusefs.stats import MountStats
from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
XATTR_PREFIX = "user.artifact."
DIR_MODE = stat.S_IFDIR | 0o555
FILE_MODE = stat.S_IFREG | 0o444
LINK_MODE = stat.S_IFLNK | 0o777
NS = 1_000_000_000
BLOCK = 512


def _guard(method: F) -> F:
    """Map our exceptions to errnos; log causes; never let a traceback reach the terminal."""

    @functools.wraps(method)
    def wrapper(self: ArtifactOperations, *args: Any) -> Any:
        try:
            return method(self, *args)
        except OSError as e:
            if isinstance(e, (DigestMismatchError, BackendError, Unavailable)):
                self.stats.add(backend_errors=1)
                log.error("%s %s: %s", method.__name__, args[:1], e)
                raise mfusepy.FuseOSError(errno.EIO) from None
            if e.errno:
                raise
            log.error("%s %s: %s", method.__name__, args[:1], e)
            raise mfusepy.FuseOSError(errno.EIO) from None
        except NotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except (ArtifactFSError, LookupError, ValueError) as e:
            log.info("%s %s: %s", method.__name__, args[:1], e)
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except Exception:
            log.exception("unexpected error in %s %s", method.__name__, args[:1])
            raise mfusepy.FuseOSError(errno.EIO) from None

    return wrapper  # type: ignore[return-value]


def _erofs() -> OSError:
    return mfusepy.FuseOSError(errno.EROFS)


def _to_ns(st: Stat) -> Stat:
    """Drafts speak float seconds; mfusepy (use_ns) wants integer nanoseconds."""
    for key in ("st_atime", "st_mtime", "st_ctime"):
        v = st.get(key)
        if isinstance(v, float):
            st[key] = int(v * NS)
    return st


def _fh(fi: Any) -> int | None:
    return None if fi is None else int(fi.fh)


def _current_fuse() -> int | None:
    """The `struct fuse *` of the running loop (valid inside a callback such as init)."""
    try:
        return mfusepy._libfuse.fuse_get_context().contents.fuse or None
    except (AttributeError, ValueError):
        return None


def _no_flush(fi: Any) -> None:
    """FOPEN_NOFLUSH (libfuse >= 3.11): close(2) of a version file sends no FLUSH upcall."""
    if hasattr(fi, "noflush"):
        fi.noflush = 1


class ArtifactOperations(mfusepy.Operations):
    """The artifactfs file system (read side; drafts are delegated)."""

    use_ns = True

    def __init__(
        self,
        resolver: Resolver,
        catalog: Catalog,
        drafts: DraftTree,
        stats: MountStats,
        *,
        attr_timeout: float,
        entry_timeout: float,
        max_readahead: int = 1 << 20,
        mount_info: dict[str, Any] | None = None,
    ) -> None:
        self.resolver = resolver
        self.catalog = catalog
        self.drafts = drafts
        self.stats = stats
        self.attr_timeout = attr_timeout
        self.entry_timeout = entry_timeout
        self.max_readahead = max_readahead
        self.uid = os.getuid()
        self.gid = os.getgid()
        self.mount_ns = time.time_ns()
        self.control = ControlDir(self._stats_json, mount_info or {})
        self.files = OpenFiles(resolver)
        self._ready: Callable[[], None] | None = None
        self._destroyed = threading.Event()
        self._fuse: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def init_with_config(self, conn: Any, config: Any) -> None:
        """Kernel caching knobs (fuse3 config struct; fuse2 gets them as -o options)."""
        if config is not None:
            config.entry_timeout = self.entry_timeout
            config.attr_timeout = self.attr_timeout
            config.negative_timeout = 0.0
            config.kernel_cache = 0  # per file, in open(): drafts must not keep stale pages
            config.use_ino = 0
        if conn is not None:
            try:
                conn.max_readahead = self.max_readahead
            except AttributeError:
                pass
        self._fuse = _current_fuse()
        if self._ready is not None:
            self._ready()

    def invalidate_paths(self, paths: list[str]) -> None:
        """Forget the kernel's cached attributes and lookups of `paths` (libfuse3 only).

        Called from a non-FUSE thread (a commit), never from inside a callback: the kernel may
        hold the locks a callback runs under, and the notification waits for them.
        """
        if self._fuse is None or self._destroyed.is_set():
            return
        invalidate = getattr(mfusepy._libfuse, "fuse_invalidate_path", None)
        if invalidate is None:
            return
        invalidate.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        for p in paths:
            invalidate(self._fuse, p.encode("utf-8", "surrogateescape"))  # -ENOENT: not cached

    def destroy(self, path: str) -> None:
        """Unmount (any cause): let drafts commit, then release what we hold."""
        if self._destroyed.is_set():
            return
        self._destroyed.set()
        try:
            self.drafts.shutdown()
        except Exception:
            log.exception("drafts shutdown failed")
        self.catalog.close()

    # -- attributes -----------------------------------------------------------------------------
    def _dir(self, mtime_ns: int | None = None) -> Stat:
        t = self.mount_ns if mtime_ns is None else mtime_ns
        return {
            "st_mode": DIR_MODE,
            "st_nlink": 2,
            "st_size": 4096,
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_atime": t,
            "st_mtime": t,
            "st_ctime": t,
        }

    def _file(self, size: int, mtime_ns: int, mode: int = FILE_MODE) -> Stat:
        return {
            "st_mode": mode,
            "st_nlink": 1,
            "st_size": size,
            "st_blocks": (size + BLOCK - 1) // BLOCK,
            "st_blksize": 1 << 17,
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_atime": mtime_ns,
            "st_mtime": mtime_ns,
            "st_ctime": mtime_ns,
        }

    def _version(self, node: tree.Version) -> VersionView:
        return self.catalog.version(node.entity, node.project, node.name, node.version)

    @_guard
    def getattr(self, path: str, fh: Any = None) -> Stat:
        self.stats.add(lookups=1)
        node = tree.route(path)
        match node:
            case tree.Root():
                return self._dir()
            case tree.Control(rel):
                kind, size = self.control.lookup(rel)
                if kind == "dir":
                    return self._dir()
                return self._file(size, time.time_ns())
            case tree.Entity(entity):
                if self.catalog.has_entity(entity):
                    return self._dir()
                return _to_ns(self.drafts.getattr(path, None))
            case tree.Project(entity, project):
                if self.catalog.has_project(entity, project):
                    return self._dir()
                return _to_ns(self.drafts.getattr(path, None))
            case tree.Alias(entity, project, name, alias):
                target = self.catalog.alias_target(entity, project, name, alias)
                st = self._file(len(target.encode()), self.mount_ns, LINK_MODE)
                return st
            case tree.Version():
                view = self._version(node)
                mtime = int(view.mtime * NS)
                if not node.rel:
                    return self._dir(mtime)
                i = view.index.find(node.rel)
                if i >= 0:
                    return self._file(view.index.size(i) or 0, mtime)
                if view.index.is_dir(node.rel):
                    return self._dir(mtime)
                raise NotFound(path)
            case tree.Draft(p):
                return _to_ns(self.drafts.getattr(p, _fh(fh)))
        raise NotFound(path)

    @_guard
    def readlink(self, path: str) -> str:
        node = tree.route(path)
        if isinstance(node, tree.Alias):
            return self.catalog.alias_target(node.entity, node.project, node.name, node.alias)
        if isinstance(node, tree.Draft):
            return self.drafts.readlink(path)
        raise mfusepy.FuseOSError(errno.EINVAL)

    @_guard
    def readdir(self, path: str, fh: Any) -> list[Any]:
        self.stats.add(listings=1)
        node = tree.route(path)
        dot = [(".", DIR_MODE, 0), ("..", DIR_MODE, 0)]
        match node:
            case tree.Root():
                names = dict.fromkeys(self.catalog.entities())
                names.update(dict.fromkeys(self.drafts.extra_entities()))
                return [*dot, (tree.CONTROL_DIR, DIR_MODE, 0)] + [(n, DIR_MODE, 0) for n in names]
            case tree.Control(rel):
                return dot + [(n, m, 0) for n, m in self.control.listing(rel)]
            case tree.Entity(entity):
                names = {}
                if self.catalog.has_entity(entity):
                    names = dict.fromkeys(self.catalog.projects(entity))
                names.update(dict.fromkeys(self.drafts.extra_projects(entity)))
                if not names and not self._draft_exists(path):
                    raise NotFound(path)
                return dot + [(n, DIR_MODE, 0) for n in names]
            case tree.Project(entity, project):
                listing: dict[str, str | None] = {}
                if self.catalog.has_project(entity, project):
                    listing = self.catalog.project_listing(entity, project)
                drafts = self.drafts.draft_names(entity, project)
                if not listing and not drafts and not self._draft_exists(path):
                    raise NotFound(path)
                out = dot + [
                    (n, DIR_MODE if target is None else LINK_MODE, 0)
                    for n, target in listing.items()
                ]
                return out + [(n, DIR_MODE, 0) for n in drafts if n not in listing]
            case tree.Version():
                view = self._version(node)
                if node.rel and not view.index.is_dir(node.rel):
                    raise NotFound(path)
                return dot + [
                    (c.name, DIR_MODE if c.is_dir else FILE_MODE, 0)
                    for c in view.index.children(node.rel)
                ]
            case tree.Draft(p):
                return dot + list(self.drafts.readdir(p))
        raise NotFound(path)

    def _draft_exists(self, path: str) -> bool:
        try:
            self.drafts.getattr(path, None)
        except OSError:
            return False
        return True

    # -- files ----------------------------------------------------------------------------------
    @_guard
    def open(self, path: str, fi: Any) -> int:
        node = tree.route(path)
        if isinstance(node, tree.Draft):
            fi.fh = self.drafts.open(path, fi.flags)
            fi.keep_cache = 0
            return 0
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            if isinstance(node, tree.Version | tree.Alias | tree.Root | tree.Entity):
                raise _erofs()
            if isinstance(node, tree.Project | tree.Control):
                raise _erofs()
        if isinstance(node, tree.Control):
            fi.fh = self.control.open(node.rel)
            fi.direct_io = 1
            return 0
        if isinstance(node, tree.Version):
            view = self._version(node)
            i = view.index.find(node.rel)
            if i < 0:
                raise NotFound(path)
            fi.fh = self.files.open(view, i)
            fi.keep_cache = 1
            _no_flush(fi)
            self.stats.add(opens=1, open_files=1)
            return 0
        raise NotFound(path)

    @_guard
    def read_buf(self, path: str, bufpp: Any, size: int, offset: int, fi: Any) -> int:
        """Cached version bytes go to libfuse as fds (read in C, see fusebuf); the rest as bytes."""
        spans = self.files.spans(fi.fh, offset, size)
        if spans is not None:
            n = fusebuf.reply_fds(bufpp, spans)
            self.stats.add(reads=1, bytes_read=n)
            return 0
        fusebuf.reply_bytes(bufpp, self._read(path, size, offset, fi))
        return 0

    @_guard
    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        return self._read(path, size, offset, fi)

    def _read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        node = tree.route(path)
        if isinstance(node, tree.Draft):
            return self.drafts.read(path, size, offset, _fh(fi) or 0)
        if isinstance(node, tree.Control):
            return self.control.read(_fh(fi) or 0, size, offset)
        if not isinstance(node, tree.Version):
            raise NotFound(path)
        view = self._version(node)
        i = view.index.find(node.rel)
        if i < 0:
            raise NotFound(path)
        total = view.index.size(i)
        if total is not None:
            if offset >= total:
                return b""
            size = min(size, total - offset)
        try:
            data = self.resolver.read(view.index.entry(i), offset, size)
        except Exception:
            self.stats.add(read_errors=1)
            raise
        self.stats.add(reads=1, bytes_read=len(data))
        return data

    @_guard
    def release(self, path: str, fi: Any) -> int:
        fh = _fh(fi) or 0
        if self.files.release(fh):
            self.stats.add(open_files=-1)
            return 0
        node = tree.route(path)
        if isinstance(node, tree.Draft):
            self.drafts.release(path, fh)
        elif isinstance(node, tree.Control):
            self.control.release(fh)
        return 0

    @_guard
    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        if tree.route(path).__class__ is tree.Draft:
            self.drafts.fsync(path, datasync, _fh(fi) or 0)
        return 0

    @_guard
    def statfs(self, path: str) -> dict[str, int]:
        try:
            sv = os.statvfs(self.resolver.config.write_dir)
            free, avail, blocks, bsize = sv.f_bfree, sv.f_bavail, sv.f_blocks, sv.f_frsize
        except OSError:
            free = avail = 0
            blocks, bsize = 1, 4096
        return {
            "f_bsize": 1 << 17,
            "f_frsize": bsize,
            "f_blocks": blocks,
            "f_bfree": free,
            "f_bavail": avail,
            "f_files": 1 << 40,
            "f_ffree": 1 << 30,
            "f_favail": 1 << 30,
            "f_namemax": 255,
        }

    # -- writes: drafts only ---------------------------------------------------------------------
    def _draft_or_erofs(self, path: str) -> str:
        if isinstance(tree.route(path), tree.Draft):
            return path
        raise _erofs()

    @_guard
    def create(self, path: str, mode: int, fi: Any) -> int:
        fi.fh = self.drafts.create(self._draft_or_erofs(path), mode, fi.flags)
        fi.keep_cache = 0
        return 0

    @_guard
    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        return self.drafts.write(self._draft_or_erofs(path), data, offset, _fh(fi) or 0)

    @_guard
    def truncate(self, path: str, length: int, fi: Any = None) -> int:
        self.drafts.truncate(self._draft_or_erofs(path), length, _fh(fi))
        return 0

    @_guard
    def unlink(self, path: str) -> int:
        self.drafts.unlink(self._draft_or_erofs(path))
        return 0

    @_guard
    def mkdir(self, path: str, mode: int) -> int:
        node = tree.route(path)
        if isinstance(node, tree.Draft | tree.Entity | tree.Project):
            if isinstance(node, tree.Entity) and self.catalog.has_entity(node.entity):
                raise mfusepy.FuseOSError(errno.EEXIST)
            if isinstance(node, tree.Project) and self.catalog.has_project(
                node.entity, node.project
            ):
                raise mfusepy.FuseOSError(errno.EEXIST)
            self.drafts.mkdir(path, mode)
            return 0
        raise _erofs()

    @_guard
    def rmdir(self, path: str) -> int:
        node = tree.route(path)
        if isinstance(node, tree.Draft | tree.Entity | tree.Project):
            self.drafts.rmdir(path)
            return 0
        raise _erofs()

    @_guard
    def rename(self, old: str, new: str) -> int:
        a, b = tree.route(old), tree.route(new)
        if isinstance(a, tree.Draft) and isinstance(b, tree.Draft):
            self.drafts.rename(old, new)
            return 0
        if isinstance(a, tree.Draft) and not isinstance(b, tree.Version | tree.Alias):
            raise mfusepy.FuseOSError(errno.EXDEV)
        raise _erofs()

    @_guard
    def symlink(self, target: str, source: str) -> int:
        # mfusepy passes (link path, link target)
        self.drafts.symlink(self._draft_or_erofs(target), source)
        return 0

    @_guard
    def chmod(self, path: str, mode: int) -> int:
        self.drafts.chmod(self._draft_or_erofs(path), mode)
        return 0

    @_guard
    def chown(self, path: str, uid: int, gid: int) -> int:
        self._draft_or_erofs(path)
        return 0  # drafts have one owner; accept so `cp -a`/rsync do not fail

    @_guard
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self.drafts.utimens(self._draft_or_erofs(path), times)
        return 0

    # -- extended attributes ----------------------------------------------------------------------
    def _xattrs(self, path: str) -> dict[str, bytes]:
        node = tree.route(path)
        if not isinstance(node, tree.Version):
            if isinstance(node, tree.Control | tree.Root | tree.Entity | tree.Project | tree.Alias):
                return {}
            raise NotFound(path)
        view = self._version(node)
        r = view.record
        if not node.rel:
            return {
                "type": r.type.encode(),
                "name": f"{r.entity}/{r.project}/{r.name}:v{r.version}".encode(),
                "version": f"v{r.version}".encode(),
                "digest": r.digest.encode(),
                "size": str(r.size).encode(),
                "file_count": str(r.file_count).encode(),
                "aliases": json.dumps(self.catalog.version_aliases(view)).encode(),
                "description": (r.description or "").encode(),
                "metadata": json.dumps(r.metadata, sort_keys=True).encode(),
                "created_at": r.created_at.encode(),
                "id": r.id.encode(),
            }
        i = view.index.find(node.rel)
        if i < 0:
            if view.index.is_dir(node.rel):
                return {}
            raise NotFound(path)
        meta = view.index.meta(i)
        out = {"digest": str(meta["digest"]).encode()}
        if meta.get("size") is not None:
            out["size"] = str(meta["size"]).encode()
        if meta.get("ref"):
            out["ref"] = str(meta["ref"]).encode()
        return out

    @_guard
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if isinstance(tree.route(path), tree.Draft):
            return self.drafts.getxattr(path, name)
        values = self._xattrs(path)
        if name.startswith(XATTR_PREFIX) and name[len(XATTR_PREFIX) :] in values:
            return values[name[len(XATTR_PREFIX) :]]
        raise mfusepy.FuseOSError(mfusepy.ENOATTR)

    @_guard
    def listxattr(self, path: str) -> list[str]:
        if isinstance(tree.route(path), tree.Draft):
            return self.drafts.listxattr(path)
        return [XATTR_PREFIX + k for k in self._xattrs(path)]

    @_guard
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self.drafts.setxattr(self._draft_or_erofs(path), name, value, options)
        return 0

    @_guard
    def removexattr(self, path: str, name: str) -> int:
        self.drafts.removexattr(self._draft_or_erofs(path), name)
        return 0

    # -- control dir ----------------------------------------------------------------------------
    def _stats_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mount": self.stats.snapshot()}
        cache_stats = getattr(self.resolver.cache, "stats", None)
        if callable(cache_stats):
            try:
                snap = cache_stats()
                out["cache"] = snap.as_dict() if hasattr(snap, "as_dict") else dict(snap)
            except Exception as e:
                out["cache"] = {"error": str(e)}
        try:
            out["drafts"] = self.drafts.stats()
        except Exception as e:
            out["drafts"] = {"error": str(e)}
        return out
