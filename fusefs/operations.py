"""The mfusepy callbacks: route each path (tree.route) to the side that answers it.

    Root, Entity, Project   the namespace: the catalog's, plus what drafts add (merged here)
    Alias, Version          the read side (versions.py)
    Control                 `/.artifactfs` (control.py)
    Draft                   the DraftTree (draft_tree.py; fusefs/draft_ops.py in a writable mount)

Errors follow one policy (guard.py); stat, statfs and xattr dicts are rendered by attrs.py. This
module decides only *who* answers, plus the mount's lifecycle (kernel caching knobs at init,
invalidation of changed draft paths, drafts' shutdown at destroy).

Caching (DESIGN §2, §7): the global entry/attr timeouts are long (set by serve.build) because
everything with a name in a version is immutable. Directory listings are never cached by the
kernel here, so new versions and moved aliases show up after `--ttl` seconds without a remount.

Connection mode: `open` answers ENOSYS, which sets the kernel's no_open for the whole
connection (DESIGN §7, issue 10): no OPEN/RELEASE upcalls, and every file keeps its pages across
opens, so a warm read of a version file costs no upcall at all. What that asks of the rest:
reads and writes arrive with fh=0 and a path (versions: openfiles.py; drafts: draft_fds.py),
open flags never arrive (O_TRUNC comes as a truncate because `init` clears ATOMIC_O_TRUNC),
not even a file made by `create` gets a RELEASE (so no callback hands out handles, and libfuse
must not hide "open" files on unlink: hard_remove), and whatever changes behind the kernel's
back must drop its cached pages (a commit: invalidate_paths; stats files never change,
control.py). Symlink targets are cached too (aliases.py keeps aliases fresh).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

import mfusepy

from artifactfs.fusefs import fusebuf, libfuse_abi, tree, writeback
from artifactfs.fusefs.aliases import AliasWatch
from artifactfs.fusefs.attrs import (
    DIR_MODE,
    FUSE_UNKNOWN_INO,
    LINK_MODE,
    XATTR_PREFIX,
    Attrs,
    path_ino,
    statfs,
    to_ns,
)
from artifactfs.fusefs.catalog import Catalog, NotFound
from artifactfs.fusefs.control import ControlDir
from artifactfs.fusefs.draft_tree import DirEntry, DraftTree, Stat
from artifactfs.fusefs.fastpath import NO_FAST_PATH, FastPath, NoFastPath
from artifactfs.fusefs.guard import guard
from artifactfs.fusefs.readahead import SiblingReadahead
from artifactfs.fusefs.refgate import fuse_caller
from artifactfs.fusefs.stats import MountStats
from artifactfs.fusefs.versions import Versions
from artifactfs.fusefs.writes import WriteRoutes, fh_of
from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

FORGET_DELAY = 0.2
"""Seconds forget_inode waits for the refused writer's close to finish."""


def _current_fuse() -> int | None:
    """The `struct fuse *` of the running loop (valid inside a callback such as init)."""
    try:
        return mfusepy._libfuse.fuse_get_context().contents.fuse or None
    except (AttributeError, ValueError):
        return None


class ArtifactOperations(WriteRoutes, mfusepy.Operations):
    """The artifactfs file system: routing and lifecycle (the answers live elsewhere; the
    changing callbacks are WriteRoutes)."""

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
        readahead: SiblingReadahead | None = None,
        alias_ttl: float = 5.0,
        write_cache: bool = False,
        fast: FastPath | NoFastPath = NO_FAST_PATH,
    ) -> None:
        self.resolver = resolver
        resolver.caller = fuse_caller  # file:// references are read as the caller (refgate.py)
        self.write_cache = write_cache and drafts.writable
        self.catalog = catalog
        self.drafts = drafts
        self.stats = stats
        self.attr_timeout = attr_timeout
        self.entry_timeout = entry_timeout
        self.max_readahead = max_readahead
        self.attrs = Attrs(os.getuid(), os.getgid(), time.time_ns())
        self.control = ControlDir(
            self._stats_json,
            mount_info or {},
            self._invalidate_later,
            lambda: {
                "refused_versions": catalog.refused(),
                "refused_records": catalog.refused_records(),
            },
        )
        self.versions = Versions(resolver, catalog, stats, self.attrs, readahead, fast)
        self._ready: Callable[[], None] | None = None
        self._destroyed = threading.Event()
        self._fuse: int | None = None
        self.aliases = AliasWatch(catalog, self.invalidate_paths, alias_ttl)
        self._later: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._later_thread: threading.Thread | None = None
        self.refused = writeback.Later(self.forget_inode)

    # -- lifecycle ------------------------------------------------------------------------------
    def init_with_config(self, conn: Any, config: Any) -> None:
        """Kernel caching knobs (fuse3 config struct; fuse2 gets them as -o options)."""
        if config is not None:
            config.entry_timeout = self.entry_timeout
            config.attr_timeout = self.attr_timeout
            config.negative_timeout = 0.0
            config.use_ino = 1  # st_ino from getattr (attrs.path_ino; drafts: their inodes)
            # libfuse hides an unlinked or renamed-over file it believes open (as
            # .fuse_hidden*) until its release; under no_open no release ever comes, so the
            # hidden files would stay in drafts for good: remove for real, as a disk does
            config.hard_remove = 1
        abi = libfuse_abi.current()  # flags through it only: libfuse 3.17 has two fields
        if conn is not None:
            try:
                conn.max_readahead = self.max_readahead
            except AttributeError:
                pass
            # open(O_TRUNC) of an existing file arrives as a truncate (no OPEN upcall carries
            # the flag under no_open): without this, libfuse's default leaves the file whole
            abi.unwant(conn, libfuse_abi.CAP_ATOMIC_O_TRUNC)
            # the kernel keeps alias symlinks' targets (no READLINK per path walk through
            # `name:latest`); aliases.py drops them when an alias moves
            abi.want(conn, libfuse_abi.CAP_CACHE_SYMLINKS)
        self._fuse = _current_fuse()
        self.versions.fast.start_touching(self.resolver.touch_cached)
        if self.write_cache:  # drafts: small writes batched in the kernel (writeback.py)
            writeback.enable(conn, self._fuse, abi)
        if self._ready is not None:
            self._ready()

    def invalidate_paths(self, paths: list[str]) -> None:
        """Forget the kernel's cached attributes and lookups of `paths` (libfuse3 only).

        Called from a non-FUSE thread (a commit), never from inside a callback: the kernel may
        hold the locks a callback runs under, and the notification waits for them.
        """
        if self._fuse is None or self._destroyed.is_set():
            return
        invalidate = libfuse_abi.current().function("fuse_invalidate_path")
        if invalidate is None:
            return
        for p in paths:
            invalidate(self._fuse, p.encode("utf-8", "surrogateescape"))  # -ENOENT: not cached

    def forget_inode(self, path: str) -> None:
        """Make the kernel drop the inode at `path` for good (its pages, and the size it keeps
        for write-back inodes): its pages and attributes now, then the dentry of its entity
        (nodeids are libfuse's and not ours to name, but the root's is 1), so the inode is
        evicted once unused and the next lookup makes a fresh one. Costs the entity's cached
        lookups; only after a refused write (root writing into a version). Never from inside
        a callback (see invalidate_paths); a little later, so the writer's close is done."""
        self.invalidate_paths([path])
        time.sleep(FORGET_DELAY)
        self._invalidate_root_entry(path.strip("/").split("/")[0])

    def _invalidate_later(self, rel: str) -> None:
        """Drop `/.artifactfs/<rel>` from the kernel's caches soon, from a thread of our own
        (inside a callback the notification would wait for the very page being answered)."""
        self._later.put(f"/{tree.CONTROL_DIR}/{rel}")
        if self._later_thread is None:
            self._later_thread = threading.Thread(
                target=self._invalidate_loop, name="afs-invalidate", daemon=True
            )
            self._later_thread.start()

    def _invalidate_loop(self) -> None:
        while not self._destroyed.is_set():
            path = self._later.get()
            while not self._later.empty():  # a burst of walks: one notification does
                self._later.get_nowait()
            self.invalidate_paths([path])

    def _invalidate_root_entry(self, name: str) -> None:
        """Forget the kernel's dentry `/<name>` and everything below it (libfuse3 only)."""
        if self._fuse is None or self._destroyed.is_set():
            return
        abi = libfuse_abi.current()
        notify = abi.function("fuse_lowlevel_notify_inval_entry")
        get_session = abi.function("fuse_get_session")
        if notify is None or get_session is None:
            return
        raw = name.encode()
        notify(get_session(self._fuse), 1, raw, len(raw))  # 1: FUSE_ROOT_ID; -ENOENT: not cached

    def destroy(self, path: str) -> None:
        """Unmount (any cause): let drafts commit, then release what we hold."""
        if self._destroyed.is_set():
            return
        self._destroyed.set()
        self.aliases.close()
        try:
            self.drafts.shutdown()
        except Exception:
            log.exception("drafts shutdown failed")
        self.versions.readahead.close()
        self.versions.fast.close(self.resolver.touch_cached)
        self.versions.files.close()
        self.catalog.close()

    # -- attributes and listings ----------------------------------------------------------------
    @guard
    def getattr(self, path: str | None, fh: Any = None) -> Stat:
        if path is None:  # fstat of a file unlinked meanwhile (libfuse's hard_remove)
            raise mfusepy.FuseOSError(errno.ESTALE)
        st = self._getattr(path, fh)
        if "st_ino" not in st:
            st["st_ino"] = path_ino(path)
        return st

    def _getattr(self, path: str, fh: Any = None) -> Stat:
        self.stats.add(lookups=1)
        node = tree.route(path)
        match node:
            case tree.Root():
                return self.attrs.dir()
            case tree.Control(rel):
                mode, size = self.control.lookup(rel)
                if stat.S_ISDIR(mode):
                    return self.attrs.dir()
                return self.attrs.file(size, time.time_ns(), mode)
            case tree.Entity(entity):
                if self.catalog.has_entity(entity):
                    return self.attrs.dir()
                return to_ns(self.drafts.getattr(path, None))
            case tree.Project(entity, project):
                if self.catalog.has_project(entity, project):
                    return self.attrs.dir()
                return to_ns(self.drafts.getattr(path, None))
            case tree.Alias():
                return self.versions.alias_stat(node)
            case tree.Version():
                return self.versions.getattr(node, path)
            case tree.Draft(p):
                return to_ns(self.drafts.getattr(p, fh_of(fh)))
        raise NotFound(path)

    @guard
    def readlink(self, path: str) -> str:
        node = tree.route(path)
        if isinstance(node, tree.Alias):
            target = self.versions.alias_target(node)
            self.aliases.answered(path, node, target)
            return target
        if isinstance(node, tree.Control):
            return self.control.readlink(node.rel)
        if isinstance(node, tree.Draft):
            return self.drafts.readlink(path)
        raise mfusepy.FuseOSError(errno.EINVAL)

    @guard
    def readdir(self, path: str, fh: Any) -> list[DirEntry]:
        self.stats.add(listings=1)
        node = tree.route(path)
        # mfusepy fills every entry into one stat struct and sets only the mode of (name, mode,
        # 0) entries: the first entry's d_ino (FUSE_UNKNOWN_INO, as libfuse numbering inodes
        # would send) stays for all (use_ino is on: a 0 would make glibc skip the entry)
        dot: list[Any] = [(".", {"st_mode": DIR_MODE, "st_ino": FUSE_UNKNOWN_INO}, 0)]
        dot.append(("..", DIR_MODE, 0))
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
                listing, drafts = self._project_names(entity, project)
                if not listing and not drafts and not self._draft_exists(path):
                    raise NotFound(path)
                out = dot + [
                    (n, DIR_MODE if target is None else LINK_MODE, 0)
                    for n, target in listing.items()
                ]
                return out + [(n, DIR_MODE, 0) for n in drafts if n not in listing]
            case tree.Version():
                return dot + self.versions.readdir(node, path)
            case tree.Draft(p):
                return dot + list(self.drafts.readdir(p))
        raise NotFound(path)

    def _project_names(self, entity: str, project: str) -> tuple[dict[str, str | None], list[str]]:
        """Versions, aliases and drafts of a project: one answer within the deadline (the
        drafts' names come from the registry's collections too), else the last good one."""

        def load() -> tuple[dict[str, str | None], list[str]]:
            listing: dict[str, str | None] = {}
            if self.catalog.has_project(entity, project):
                listing = self.catalog.project_listing(entity, project)
            return listing, self.drafts.draft_names(entity, project)

        return self.catalog.answer(("project_dir", entity, project), load)

    def _draft_exists(self, path: str) -> bool:
        try:
            self.drafts.getattr(path, None)
        except OSError:
            return False
        return True

    @guard
    def statfs(self, path: str) -> dict[str, int]:
        return statfs(self.resolver.config.write_dir)

    # -- files ----------------------------------------------------------------------------------
    @guard
    def open(self, path: str, fi: Any) -> int:
        """ENOSYS, once: the kernel then opens every file of this connection without asking
        (no_open; see the module docstring). Never called again after the first open."""
        raise mfusepy.FuseOSError(errno.ENOSYS)

    @guard
    def read_buf(self, path: str | None, bufpp: Any, size: int, offset: int, fi: Any) -> int:
        """Cached version bytes go to libfuse as fds (read in C, see fusebuf); the rest as bytes."""
        if path is None:  # a draft file unlinked meanwhile: its bytes are gone (an error, never
            raise mfusepy.FuseOSError(errno.ESTALE)  # other bytes)
        node = tree.route(path)
        if isinstance(node, tree.Version) and node.rel:
            spans = self.versions.spans(node, path, offset, size)
            if spans is not None:
                n = fusebuf.reply_fds(bufpp, spans)
                self.stats.add(reads=1, bytes_read=n)
                return 0
        fusebuf.reply_bytes(bufpp, self._read(node, path, size, offset, fi))
        return 0

    @guard
    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        return self._read(tree.route(path), path, size, offset, fi)

    def _read(self, node: tree.Node, path: str, size: int, offset: int, fi: Any) -> bytes:
        if isinstance(node, tree.Draft):
            return self.drafts.read(path, size, offset, fh_of(fi))
        if isinstance(node, tree.Control):
            return self.control.read(node.rel, size, offset)
        if not isinstance(node, tree.Version):
            raise NotFound(path)
        return self.versions.read(node, size, offset, path)

    # No `release`: under no_open only files made by `create` get one, and drafts hand out no
    # handles (draft_ops.create), so libfuse answers it in C: one Python upcall less per file.

    @guard
    def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
        if path is not None and tree.route(path).__class__ is tree.Draft:
            self.drafts.fsync(path, datasync, fh_of(fi))
        return 0

    # -- extended attributes ----------------------------------------------------------------------
    def _xattrs(self, path: str) -> dict[str, bytes]:
        node = tree.route(path)
        if isinstance(node, tree.Version):
            return self.versions.xattrs(node, path)
        if isinstance(node, tree.Control | tree.Root | tree.Entity | tree.Project | tree.Alias):
            return {}
        raise NotFound(path)

    @guard
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if isinstance(tree.route(path), tree.Draft):
            return self.drafts.getxattr(path, name)
        if not name.startswith(XATTR_PREFIX):  # ACLs, SELinux labels (`ls -l` asks for both)
            raise mfusepy.FuseOSError(mfusepy.ENOATTR)
        values = self._xattrs(path)
        if name.startswith(XATTR_PREFIX) and name[len(XATTR_PREFIX) :] in values:
            return values[name[len(XATTR_PREFIX) :]]
        raise mfusepy.FuseOSError(mfusepy.ENOATTR)

    @guard
    def listxattr(self, path: str) -> list[str]:
        if isinstance(tree.route(path), tree.Draft):
            return self.drafts.listxattr(path)
        return [XATTR_PREFIX + k for k in self._xattrs(path)]

    # -- control dir ----------------------------------------------------------------------------
    def _stats_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mount": self.stats.snapshot()}
        fast = self.versions.fast.counters()
        if fast:  # what C answered counts as lookups and reads of the mount, too
            mount = out["mount"]
            for key in ("lookups", "reads", "bytes_read"):
                mount[key] += fast[key]
            mount["fast_path"] = fast
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
