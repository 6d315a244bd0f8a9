"""The read side: what the registry shows in the mount (entities, projects, aliases, versions).

Version files are immutable, so they are opened with `keep_cache` (the kernel keeps their pages
across opens) and without FLUSH upcalls; their bytes come from the shared cache, handed to
libfuse as fds where the blocks are cached (openfiles.py, fusebuf.py) and read by range through
the resolver otherwise. Alias symlinks stay fresh although the kernel's entry/attr timeouts are
long: the kernel does not cache symlink targets (no FUSE_CAP_CACHE_SYMLINKS), so every path walk
through `name:latest` calls `readlink`, which answers from the registry's TTL cache.

Apart from the routing (operations.py) so that how versions are looked up, opened and read is
one room; drafts and the control directory never come here.
"""

from __future__ import annotations

from typing import Any

from artifactfs.fusefs import tree
from artifactfs.fusefs.attrs import (
    DIR_MODE,
    FILE_MODE,
    LINK_MODE,
    NS,
    Attrs,
    entry_xattrs,
    version_xattrs,
)
from artifactfs.fusefs.catalog import Catalog, NotFound, VersionView, parse_time
from artifactfs.fusefs.draft_tree import DirEntry, Stat
from artifactfs.fusefs.openfiles import OpenFiles
from artifactfs.fusefs.stats import MountStats
from artifactfs.resolver.resolver import Resolver


def _no_flush(fi: Any) -> None:
    """FOPEN_NOFLUSH (libfuse >= 3.11): close(2) of a version file sends no FLUSH upcall."""
    if hasattr(fi, "noflush"):
        fi.noflush = 1


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
        if not node.rel:  # the version directory: its record is enough (`ls -l` of a project)
            record = self.catalog.record(node.entity, node.project, node.name, node.version)
            return self.attrs.dir(int(parse_time(record.created_at) * NS))
        view = self.view(node)
        mtime = int(view.mtime * NS)
        i = view.index.find(node.rel)
        if i >= 0:
            return self.attrs.file(view.index.size(i) or 0, mtime)
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
    def open(self, node: tree.Version, fi: Any, path: str) -> None:
        """Fill `fi` (fh, keep_cache, noflush) for a version file."""
        view = self.view(node)
        i = view.index.find(node.rel)
        if i < 0:
            raise NotFound(path)
        fi.fh = self.files.open(view, i)
        fi.keep_cache = 1
        _no_flush(fi)
        self.stats.add(opens=1, open_files=1)

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
        return data

    def release(self, fh: int) -> bool:
        """Close a version file's handle; False when `fh` is not one."""
        if self.files.release(fh):
            self.stats.add(open_files=-1)
            return True
        return False
