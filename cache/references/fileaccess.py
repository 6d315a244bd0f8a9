"""Who may read a `file://` reference: the rights of the user who asks, not of the reader.

WHY: a manifest is written by whoever can write the registry, and a `file://` entry names any
path on the reader's machine. The process that reads it (a mount daemon running as root with
`--allow-other`, a download run as root) could read a root-only file and hand it to anyone.
So a referenced file is served only to a caller the host itself would let read it: read
permission on the file and search permission on every directory above it, judged from the
file's real path (symlinks resolved) by the POSIX mode bits. A file or directory carrying an
access ACL is judged conservatively: only root and the owner pass (we do not evaluate ACLs).

`shown_attrs` is what the mount shows for such an entry (the file's own owner and group, and
mode bits no wider than what its directories let each class reach), so that the kernel's own
permission check (`default_permissions`) refuses other users before any page cache or cached
attribute can serve them; `may_read` is the same rule for the reads the kernel does forward.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass

ACL = "system.posix_acl_access"
R, X = 4, 1


@dataclass(frozen=True)
class Caller:
    """Who asks: a uid and every group it has (primary and supplementary)."""

    uid: int
    gids: frozenset[int]

    @classmethod
    def of_process(cls, pid: int, uid: int, gid: int) -> Caller:
        """The caller `pid` (FUSE's request context), with its supplementary groups from
        /proc/<pid>/status; only the request's uid and gid if the process is gone already."""
        gids = {gid}
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Groups:"):
                        gids.update(int(g) for g in line.split()[1:] if g.isdigit())
                        break
        except OSError:
            pass
        return cls(uid, frozenset(gids))

    @classmethod
    def current(cls) -> Caller:
        """This process (its effective ids)."""
        return cls(os.geteuid(), frozenset({os.getegid(), *os.getgroups()}))


def _has_acl(path: str) -> bool:
    try:
        os.getxattr(path, ACL, follow_symlinks=False)
    except OSError:
        return False
    return True


def _allowed(
    st: os.stat_result, path: str, uid: int | None, gids: Collection[int], bit: int
) -> bool:
    """Whether the mode bits of `st` give `bit` to this uid/gids (the kernel's class order:
    owner, then group, then other; the first class that matches decides)."""
    mode = st.st_mode
    if uid is not None and uid == st.st_uid:
        return bool(mode >> 6 & bit)
    if _has_acl(path):
        return False  # not evaluated: refuse rather than guess
    if st.st_gid in gids:
        return bool(mode >> 3 & bit)
    return bool(mode & bit)


def _chain(path: str) -> tuple[str, list[str]]:
    """The real path of `path` and every directory above it, top down."""
    real = os.path.realpath(path)
    dirs, d = [], os.path.dirname(real)
    while True:
        dirs.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return real, dirs[::-1]


def may_read(path: str, caller: Caller) -> bool:
    """Whether `caller` could open `path` for reading itself (root always can)."""
    if caller.uid == 0:
        return True
    try:
        real, dirs = _chain(path)
        for d in dirs:
            if not _allowed(os.stat(d), d, caller.uid, caller.gids, X):
                return False
        st = os.stat(real)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and _allowed(st, real, caller.uid, caller.gids, R)


@dataclass(frozen=True)
class ShownAttrs:
    """Owner, group and permission bits (0o7777 part) to show for a referenced file."""

    uid: int
    gid: int
    mode: int


def shown_attrs(path: str) -> ShownAttrs | None:
    """The referenced file's owner and group, with read/execute bits for each class only
    when that class can also reach the file through its directories (write bits never: the
    mount is read-only). None when the file cannot be stat'ed (then nobody but root reads)."""
    try:
        real, dirs = _chain(path)
        st = os.stat(real)
        dir_stats = [(os.stat(d), d) for d in dirs]
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    owner_ok = all(_allowed(s, d, st.st_uid, (st.st_gid,), X) for s, d in dir_stats)
    group_ok = all(_allowed(s, d, None, (st.st_gid,), X) for s, d in dir_stats)
    other_ok = all(_allowed(s, d, None, (), X) for s, d in dir_stats)
    mode = st.st_mode & 0o555
    if not owner_ok:
        mode &= ~0o500
    if not group_ok or _has_acl(real):
        mode &= ~0o050
    if not other_ok or _has_acl(real):
        mode &= ~0o005
    return ShownAttrs(st.st_uid, st.st_gid, mode)
