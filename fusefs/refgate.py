"""`file://` references in the mount: shown with the referenced file's owner and mode, and read
only by callers the host would let read that file (cache/references/fileaccess.py).

WHY two checks: the daemon may run as root with `--allow-other`, so without them any local user
could read any file a manifest names. The kernel answers much without asking the daemon: an
open under `no_open`, and a read from the page cache that another user's read filled. With
`default_permissions` (always on, serve.py) the kernel checks every open against the mode and
owner getattr showed, so showing the file's own owner and (read-only, reachable) mode makes the
kernel refuse other users even when the bytes sit in its page cache. The attributes are cached
for the mount's attr timeout, so a file made more private after it was shown could still pass
the kernel: every read the kernel does forward is checked again against the caller's uid and
groups (FUSE's request context; supplementary groups from /proc/<pid>/status) and refused with
EACCES and one log line.

Apart from versions.py so the rule is one small piece: which entries are local references
(`local_file`), what to show (`shown`), and who may read (`check`).
"""

from __future__ import annotations

import logging
import stat
from typing import Any

import mfusepy

from artifactfs.cache.references.file import check_readable, local_file_of
from artifactfs.cache.references.fileaccess import Caller, shown_attrs
from artifactfs.errors import ReferenceAccessError
from artifactfs.resolver.manifest_index import ManifestIndex

log = logging.getLogger(__name__)


def fuse_caller() -> Caller | None:
    """The caller of the FUSE request this thread is answering; None outside one (the
    daemon's own background work: read-ahead, commits), which then reads as the daemon.
    Set as the resolver's `caller`, so reads of stored entries through drafts check too."""
    try:
        uid, gid, pid = mfusepy.fuse_get_context()
    except (ValueError, AttributeError):  # no request context on this thread
        return None
    if pid <= 0:
        return None
    return Caller.of_process(pid, uid, gid)


def local_file(index: ManifestIndex, i: int) -> str | None:
    """The local path entry `i` references (a `file://` ref), else None. Cheap for the common
    entry, whose stored value is a bare digest."""
    raw = index.meta_bytes(i)
    if raw[:1] != b"{" or b'"ref"' not in raw:
        return None
    ref = index.meta(i).get("ref")
    return local_file_of(ref) if isinstance(ref, str) else None


def shown(st: dict[str, Any], local: str) -> dict[str, Any]:
    """A version file's stat with the referenced file's owner, group and reachable read and
    execute bits (root-only, mode 0400, when the file cannot be stat'ed)."""
    attrs = shown_attrs(local)
    uid, gid, mode = (0, 0, 0o400) if attrs is None else (attrs.uid, attrs.gid, attrs.mode)
    st.update(st_uid=uid, st_gid=gid, st_mode=stat.S_IFREG | mode)
    return st


class ReferenceGate:
    """The local references this mount has served, and the per-read check of their callers."""

    def __init__(self) -> None:
        # path -> referenced local file, for every such path read so far (never evicted: a
        # path with a held handle must keep being checked; one entry per referenced file read)
        self._paths: dict[str, str] = {}

    def note(self, path: str, index: ManifestIndex, i: int) -> str | None:
        """Look entry `i` up (on a path's first read) and check the caller if it is a local
        reference; returns the local path or None."""
        local = local_file(index, i)
        if local is not None:
            self._paths[path] = local
            self.check(path, local)
        return local

    def check_known(self, path: str) -> None:
        """Check the caller if `path` is a local reference seen before (one dict lookup)."""
        local = self._paths.get(path)
        if local is not None:
            self.check(path, local)

    def is_local(self, path: str) -> bool:
        """Whether `path` was seen to be a local reference (never answered from C: its
        caller is checked on every read)."""
        return path in self._paths

    def check(self, path: str, local: str) -> None:
        """ReferenceAccessError (EACCES), logged once per refusal, unless the caller of the
        current FUSE request may read `local` itself."""
        uid, gid, pid = mfusepy.fuse_get_context()
        caller = Caller.of_process(pid, uid, gid)
        try:
            check_readable(local, f"file://{local}", caller)
        except ReferenceAccessError:
            log.warning(
                "refused %s to uid %d (pid %d): it may not read the file the entry references",
                path,
                uid,
                pid,
            )
            raise
