"""Metadata of draft entries while the draft lives: modes, owners, times, user xattrs.

All of it is the staged layer's own (the local file system keeps it); an unchanged stored file
or directory gets a placeholder first (Draft._stage_meta, a metadata-only copy-up), except when
the change would leave it looking as it already does (`cp -a` re-applying a stored file's mode),
so the stored layer stays lazy. None of this is part of a version but the executable bit
(contents.py).

A mixin of Draft, apart from draft.py so that the mutations of the tree and of bytes stay there.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import TYPE_CHECKING

from artifactfs.drafts.contents import stored_mode
from artifactfs.drafts.staging import StagingArea
from artifactfs.drafts.view import Node, err
from artifactfs.drafts.view import norm as _norm

FILE_MODE = 0o644
DIR_MODE = 0o755


class DraftMetadata:
    """chmod, chown, utimens and user xattrs of a Draft."""

    lock: threading.RLock
    staging: StagingArea
    owner: tuple[int, int]

    if TYPE_CHECKING:  # provided by DraftView and Draft

        @property
        def base_mtime_ns(self) -> int: ...

        def node(self, path: str) -> Node: ...

        def _stage_meta(self, path: str) -> Node: ...

    # -- metadata kept while the draft lives ----------------------------------------------------
    def chmod(self, path: str, mode: int) -> None:
        path = _norm(path)
        with self.lock:
            found = self.node(path)
            if found.staged is None:
                current = DIR_MODE if found.is_dir else stored_mode(found.entry)  # type: ignore[arg-type]
                if mode & 0o7777 == current:
                    return  # the stored layer already looks like that: stay lazy
                found = self._stage_meta(path)
            self.staging.chmod(path, mode & 0o7777)

    def chown(self, path: str, uid: int, gid: int) -> None:
        """Owners while the draft lives (as root: anyone; else the local file system says)."""
        path = _norm(path)
        with self.lock:
            found = self.node(path)
            if found.staged is None:
                if uid in (-1, self.owner[0]) and gid in (-1, self.owner[1]):
                    return
                self._stage_meta(path)
            self.staging.chown(path, uid, gid)

    def utimens(self, path: str, times_ns: tuple[int, int] | None) -> None:
        path = _norm(path)
        with self.lock:
            found = self.node(path)
            if found.staged is None:
                t = self.base_mtime_ns
                if times_ns == (t, t):
                    return
                self._stage_meta(path)
            self.staging.utime(path, times_ns)

    # -- user xattrs (kept while the draft lives, not part of a version) ------------------------
    def getxattr(self, path: str, name: str) -> bytes:
        path = _norm(path)
        if self.node(path).staged is None:
            raise err(errno.ENODATA, path)
        return self.staging.getxattr(path, name)

    def listxattr(self, path: str) -> list[str]:
        path = _norm(path)
        if self.node(path).staged is None:
            return []
        return self.staging.listxattr(path)

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0) -> None:
        path = _norm(path)
        with self.lock:
            if flags & os.XATTR_REPLACE and self.node(path).staged is None:
                raise err(errno.ENODATA, path)
            self._stage_meta(path)
            self.staging.setxattr(path, name, value, flags)

    def removexattr(self, path: str, name: str) -> None:
        path = _norm(path)
        with self.lock:
            if self.node(path).staged is None:
                raise err(errno.ENODATA, path)
            self.staging.removexattr(path, name)
