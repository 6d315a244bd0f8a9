"""The changing callbacks: every change goes to a draft, or fails the way a shell expects.

A write, create, truncate, unlink, chmod, utimens or setxattr below a draft path goes to the
DraftTree; anywhere else it is EROFS (versions, aliases and the namespace are read-only).
`mkdir`/`rmdir` also reach the DraftTree at depth 1 and 2 (new entities and projects for
drafts; EEXIST when the registry has them). A rename is the DraftTree's only when both paths
are draft paths; out of a draft into anything but a version it is EXDEV, so `mv` copies.

Apart from the reading callbacks (operations.py) because these routes are one rule, "drafts
only", and new changing calls land here (link, mknod, chown, fallocate: a hard link from a
version into a draft is EXDEV, as across devices). A mixin of ArtifactOperations.
"""

from __future__ import annotations

import errno
from typing import Any

import mfusepy

from artifactfs.fusefs import fusebuf, tree
from artifactfs.fusefs.catalog import Catalog
from artifactfs.fusefs.draft_tree import DraftTree
from artifactfs.fusefs.guard import erofs, guard
from artifactfs.fusefs.stats import MountStats
from artifactfs.fusefs.writeback import Later


def fh_of(fi: Any) -> int | None:
    """The file handle in a fuse_file_info; None when the kernel sent none, or fh=0 (a file
    opened without an upcall under no_open: only its path says which file it is)."""
    return None if fi is None else int(fi.fh) or None


class WriteRoutes:
    """The changing mfusepy callbacks of ArtifactOperations."""

    catalog: Catalog
    drafts: DraftTree
    stats: MountStats
    refused: Later

    # -- files and the tree -----------------------------------------------------------------------
    def _draft_or_erofs(self, path: str) -> str:
        if isinstance(tree.route(path), tree.Draft):
            return path
        raise erofs()

    @guard
    def create(self, path: str, mode: int, fi: Any) -> int:
        fi.fh = self.drafts.create(self._draft_or_erofs(path), mode, fi.flags)
        fi.keep_cache = 0
        return 0

    @guard
    def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
        if path is None:  # written back after its file was unlinked: nobody can see it
            return len(data)
        cached = bool(getattr(fi, "writepage", 1)) if fi is not None else True
        if not isinstance(tree.route(path), tree.Draft):
            self.refused.add(path)  # root wrote into cached pages of a version (writeback.py)
            raise erofs()
        return self.drafts.write(path, data, offset, fh_of(fi), cached)

    @guard
    def write_buf(self, path: str | None, buf: Any, offset: int, fi: Any) -> int:
        """Writes (page write-backs, mostly 1 MiB) copied into the staged file by libfuse in
        C (fusebuf.write_to_fd), without making a Python bytes object of them."""
        if path is None:  # written back after its file was unlinked: nobody can see it
            return int(fusebuf.buffer_size(buf))
        cached = bool(getattr(fi, "writepage", 1)) if fi is not None else True
        if not isinstance(tree.route(path), tree.Draft):
            self.refused.add(path)  # root wrote into cached pages of a version (writeback.py)
            raise erofs()
        return self.drafts.write_buf(path, buf, offset, cached)

    @guard
    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fi: Any) -> int:
        if path is None:  # an unlinked file (kernel flushing its times): nothing to keep
            return 0
        self.drafts.fallocate(self._draft_or_erofs(path), mode, offset, size)
        return 0

    @guard
    def mknod(self, path: str, mode: int, dev: int) -> int:
        self.drafts.mknod(self._draft_or_erofs(path), mode, dev)
        return 0

    @guard
    def truncate(self, path: str | None, length: int, fi: Any = None) -> int:
        if path is None:  # an unlinked file (kernel flushing its times): nothing to keep
            return 0
        self.drafts.truncate(self._draft_or_erofs(path), length, fh_of(fi))
        return 0

    @guard
    def unlink(self, path: str) -> int:
        self.drafts.unlink(self._draft_or_erofs(path))
        return 0

    @guard
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
        raise erofs()

    @guard
    def rmdir(self, path: str) -> int:
        node = tree.route(path)
        if isinstance(node, tree.Draft | tree.Entity | tree.Project):
            self.drafts.rmdir(path)
            return 0
        raise erofs()

    @guard
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        a, b = tree.route(old), tree.route(new)
        if isinstance(a, tree.Draft) and isinstance(b, tree.Draft):
            self.drafts.rename(old, new, flags)
            return 0
        if isinstance(a, tree.Draft) and not isinstance(b, tree.Version | tree.Alias):
            raise mfusepy.FuseOSError(errno.EXDEV)
        raise erofs()

    @guard
    def symlink(self, target: str, source: str) -> int:
        # mfusepy passes (link path, link target)
        self.drafts.symlink(self._draft_or_erofs(target), source)
        return 0

    @guard
    def link(self, target: str, source: str) -> int:
        # mfusepy passes (new name, existing file); a link out of a version is another device
        if not isinstance(tree.route(source), tree.Draft):
            self._draft_or_erofs(target)
            raise mfusepy.FuseOSError(errno.EXDEV)
        self.drafts.link(self._draft_or_erofs(target), source)
        return 0

    @guard
    def chmod(self, path: str | None, mode: int) -> int:
        if path is None:  # an unlinked file (kernel flushing its times): nothing to keep
            return 0
        self.drafts.chmod(self._draft_or_erofs(path), mode)
        return 0

    @guard
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        if path is None:  # an unlinked file (kernel flushing its times): nothing to keep
            return 0
        self.drafts.chown(self._draft_or_erofs(path), uid, gid)
        return 0

    @guard
    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        if path is None:  # an unlinked file (kernel flushing its times): nothing to keep
            return 0
        self.drafts.utimens(self._draft_or_erofs(path), times)
        return 0

    # -- extended attributes: commit options of drafts -----------------------------------------
    @guard
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self.drafts.setxattr(self._draft_or_erofs(path), name, value, options)
        return 0

    @guard
    def removexattr(self, path: str, name: str) -> int:
        self.drafts.removexattr(self._draft_or_erofs(path), name)
        return 0
