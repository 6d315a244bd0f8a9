"""The read side: what the registry shows in the mount (entities, projects, aliases, versions).

Version files are immutable, so the kernel keeps their pages across opens and opens them without
asking (the mount's no_open, operations.py); their bytes come from the shared cache, handed to
libfuse as fds where they are cached (openfiles.py, fusebuf.py) and read by range through the
resolver otherwise. Alias symlinks stay fresh although the kernel's entry/attr timeouts are
long: the kernel does not cache symlink targets (no FUSE_CAP_CACHE_SYMLINKS), so every path walk
through `name:latest` calls `readlink`, which answers from the registry's TTL cache.

Apart from the routing (operations.py) so that how versions are looked up, opened and read is
one room; drafts and the control directory never come here.
"""

from __future__ import annotations

from artifactfs.cache.handles import Span
from artifactfs.fusefs import tree
from artifactfs.fusefs.attrs import (
    DIR_MODE,
    EXEC_MODE,
    FILE_MODE,
    LINK_MODE,
    NS,
    Attrs,
    entry_xattrs,
    path_ino,
    version_xattrs,
)
from artifactfs.fusefs.catalog import Catalog, NotFound, VersionView, parse_time
from artifactfs.fusefs.draft_tree import DirEntry, Stat
from artifactfs.fusefs.fastpath import NO_FAST_PATH, FastPath, NoFastPath
from artifactfs.fusefs.openfiles import OpenFiles
from artifactfs.fusefs.readahead import SiblingReadahead
from artifactfs.fusefs.refgate import ReferenceGate, local_file, shown
from artifactfs.fusefs.stats import MountStats
from artifactfs.resolver.resolver import Resolver

FOUND_LIMIT = 4096
"""Paths whose index position getattr keeps for the read that follows."""


class Versions:
    """Answers for Alias and Version nodes (tree.py), from the catalog and the cache."""

    def __init__(
        self,
        resolver: Resolver,
        catalog: Catalog,
        stats: MountStats,
        attrs: Attrs,
        readahead: SiblingReadahead | None = None,
        fast: FastPath | NoFastPath = NO_FAST_PATH,
    ) -> None:
        self.resolver = resolver
        self.fast = fast
        """Answers given here for immutable paths, handed to the C fast path (fastpath.py)."""
        self.catalog = catalog
        self.stats = stats
        self.attrs = attrs
        self.files = OpenFiles(resolver)
        self._found: dict[str, tuple[VersionView, int]] = {}
        """path -> where getattr just found it: a cold read's LOOKUP is followed by its READ,
        which then skips a second index search (a plain dict: atomic under the GIL; bounded)"""
        self.readahead = readahead or SiblingReadahead(resolver, stats, files=0)
        self.references = ReferenceGate()

    def view(self, node: tree.Version) -> VersionView:
        return self.catalog.version(node.entity, node.project, node.name, node.version)

    # -- attributes and listings ----------------------------------------------------------------
    def alias_target(self, node: tree.Alias) -> str:
        return self.catalog.alias_target(node.entity, node.project, node.name, node.alias)

    def alias_stat(self, node: tree.Alias) -> Stat:
        target = self.alias_target(node)
        return self.attrs.file(len(target.encode()), self.attrs.mount_ns, LINK_MODE)

    def getattr(self, node: tree.Version, path: str) -> Stat:
        if not node.rel:  # the version directory: its record is enough (`ls -l` of a project)
            record = self.catalog.record(node.entity, node.project, node.name, node.version)
            return self.attrs.dir(int(parse_time(record.created_at) * NS))
        view = self.view(node)
        mtime = int(view.mtime * NS)
        i = view.index.find(node.rel)
        if i >= 0:
            if len(self._found) >= FOUND_LIMIT:
                self._found.clear()
            self._found[path] = (view, i)
            mode = EXEC_MODE if view.index.executable(i) else FILE_MODE
            size = view.index.size(i)
            st = self.attrs.file(size or 0, mtime, mode)
            local = local_file(view.index, i)
            if local is not None:
                return shown(st, local)  # refgate.py says why (never handed to C: per caller)
            st["st_ino"] = path_ino(path)
            if size is not None:
                self.fast.remember_attrs(path, st)
            return st
        if view.index.is_dir(node.rel):
            return self.attrs.dir(mtime)
        raise NotFound(path)

    def readdir(self, node: tree.Version, path: str) -> list[DirEntry]:
        view = self.view(node)
        if node.rel and not view.index.is_dir(node.rel):
            raise NotFound(path)
        return [
            (c.name, DIR_MODE if c.is_dir else FILE_MODE, 0) for c in view.index.children(node.rel)
        ]

    def xattrs(self, node: tree.Version, path: str) -> dict[str, bytes]:
        if not node.rel:  # the version directory: its record (no manifest needed)
            record = self.catalog.record(node.entity, node.project, node.name, node.version)
            return version_xattrs(record, self.catalog.version_aliases(record))
        view = self.view(node)
        i = view.index.find(node.rel)
        if i < 0:
            if view.index.is_dir(node.rel):
                return {}
            raise NotFound(path)
        return entry_xattrs(view.index.meta(i))

    # -- files ----------------------------------------------------------------------------------
    def spans(self, node: tree.Version, path: str, offset: int, size: int) -> list[Span] | None:
        """Where a read's bytes are cached, as fd spans for libfuse (None: read them by bytes).
        A path read recently has a handle already: no index lookup then."""

        def locate() -> tuple[VersionView, int]:
            found = self._found.pop(path, None)
            if found is not None:
                return found
            view = self.view(node)
            i = view.index.find(node.rel)
            if i < 0:
                raise NotFound(path)
            self.references.note(path, view.index, i)  # a local reference: may the caller?
            return view, i

        self.references.check_known(path)
        spans = self.files.spans(path, locate, offset, size)
        if spans and self.fast.reads_in_c and not self.references.is_local(path):
            whole = self.files.verified_object(path)
            if whole is not None:
                self.fast.remember_object(path, *whole)
        return spans

    def cached_fd(self, node: tree.Version, path: str) -> int | None:
        """An fd on the entry's blob if it is wholly cached and passes its seal check (the
        caller owns it: passthrough.py hands it to the kernel), else None."""
        view = self.view(node)
        i = view.index.find(node.rel)
        if i < 0:
            raise NotFound(path)
        return self.resolver.open_cached(view.index.entry(i))

    def read(self, node: tree.Version, size: int, offset: int, path: str) -> bytes:
        """Bytes by range through the resolver (read_buf's fallback when blocks are not cached)."""
        view = self.view(node)
        i = view.index.find(node.rel)
        if i < 0:
            raise NotFound(path)
        local = self.references.note(path, view.index, i)
        total = view.index.size(i)
        if total is not None:
            if offset >= total:
                return b""
            size = min(size, total - offset)
        self.readahead.missed(view, i)  # its siblings start while this one is fetched
        entry = view.index.entry(i)
        try:  # an uncached read fetches: within the mount's deadline (fusefs/deadline.py)
            data = self.catalog.deadlines.call(
                ("read", path, offset, size),
                lambda: self.resolver.read(entry, offset, size),
                f"reading {path}",
                failure_key=("read", path),
            )
        except Exception:
            self.stats.add(read_errors=1)
            raise
        self.stats.add(reads=1, bytes_read=len(data))
        if self.fast.reads_in_c and local is None and total is not None and offset + size >= total:
            # a read to the end of a small entry caches it whole: the next epoch reads it in C
            whole = self.resolver.verified_object(entry)
            if whole is not None:
                self.fast.remember_object(path, *whole)
        return data
