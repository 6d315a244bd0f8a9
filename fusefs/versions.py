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
    version_xattrs,
)
from artifactfs.fusefs.catalog import Catalog, NotFound, VersionView
from artifactfs.fusefs.draft_tree import DirEntry, Stat
from artifactfs.fusefs.openfiles import OpenFiles
from artifactfs.fusefs.stats import MountStats
from artifactfs.resolver.resolver import Resolver


class Versions:
    """Answers for Alias and Version nodes (tree.py), from the catalog and the cache."""

    def __init__(
        self, resolver: Resolver, catalog: Catalog, stats: MountStats, attrs: Attrs
    ) -> None:
        self.resolver = resolver
        self.catalog = catalog
        self.stats = stats
        self.attrs = attrs
        self.files = OpenFiles(resolver)

    def view(self, node: tree.Version) -> VersionView:
        return self.catalog.version(node.entity, node.project, node.name, node.version)

    # -- attributes and listings ----------------------------------------------------------------
    def alias_target(self, node: tree.Alias) -> str:
        return self.catalog.alias_target(node.entity, node.project, node.name, node.alias)

    def alias_stat(self, node: tree.Alias) -> Stat:
        target = self.alias_target(node)
        return self.attrs.file(len(target.encode()), self.attrs.mount_ns, LINK_MODE)

    def getattr(self, node: tree.Version, path: str) -> Stat:
        view = self.view(node)
        mtime = int(view.mtime * NS)
        if not node.rel:
            return self.attrs.dir(mtime)
        i = view.index.find(node.rel)
        if i >= 0:
            mode = EXEC_MODE if view.index.executable(i) else FILE_MODE
            return self.attrs.file(view.index.size(i) or 0, mtime, mode)
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
        view = self.view(node)
        if not node.rel:
            return version_xattrs(view, self.catalog.version_aliases(view))
        i = view.index.find(node.rel)
        if i < 0:
            if view.index.is_dir(node.rel):
                return {}
            raise NotFound(path)
        return entry_xattrs(view.index.meta(i))

    # -- files ----------------------------------------------------------------------------------
    def spans(self, node: tree.Version, path: str, offset: int, size: int) -> list[Span] | None:
        """Where a read's bytes are cached, as fd spans for libfuse (None: read them by bytes)."""
        view = self.view(node)
        i = view.index.find(node.rel)
        if i < 0:
            raise NotFound(path)
        return self.files.spans(path, view, i, offset, size)

    def read(self, node: tree.Version, size: int, offset: int, path: str) -> bytes:
        """Bytes by range through the resolver (read_buf's fallback when blocks are not cached)."""
        view = self.view(node)
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
