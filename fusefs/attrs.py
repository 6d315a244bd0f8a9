"""What the kernel is told *about* things: stat dicts, statfs, and the xattrs of versions.

Pure renderings: a version record, a manifest index entry or the write dir's free space in, the
dict mfusepy hands the kernel out. Times are integer nanoseconds (mfusepy `use_ns`); the drafts'
float seconds are converted by `to_ns`. Apart from the callbacks so the read side and the
routing stay about *which* answer, not its shape.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any

from artifactfs.fusefs.draft_tree import Stat
from artifactfs.resolver.records import VersionRecord

XATTR_PREFIX = "user.artifact."
DIR_MODE = stat.S_IFDIR | 0o555
FILE_MODE = stat.S_IFREG | 0o444
EXEC_MODE = stat.S_IFREG | 0o555
"""A version file whose entry keeps the exec bit (`extra.executable`, set by drafts)."""
LINK_MODE = stat.S_IFLNK | 0o777
NS = 1_000_000_000
BLOCK = 512
FUSE_UNKNOWN_INO = 0xFFFFFFFF
"""d_ino of listed entries (what libfuse sends when it numbers inodes itself); never 0,
which glibc's readdir takes for a deleted entry and skips."""


def path_ino(path: str) -> int:
    """The inode number shown for a path the mount makes up (versions, aliases, the
    namespace): stable for the path, high bit set (drafts show their staged inodes' numbers,
    which never have it). The mount numbers inodes itself (use_ino) so that the names of one
    hard-linked file in a draft show one number, as `git clone --local` checks."""
    if path == "/":
        return 1
    raw = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(raw, "big") | 1 << 63


class Attrs:
    """Stat dicts of the read-only tree: owned by the mounting user, times of the mount or of
    the version."""

    def __init__(self, uid: int, gid: int, mount_ns: int) -> None:
        self.uid, self.gid, self.mount_ns = uid, gid, mount_ns

    def dir(self, mtime_ns: int | None = None) -> Stat:
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

    def file(self, size: int, mtime_ns: int, mode: int = FILE_MODE) -> Stat:
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


def to_ns(st: Stat) -> Stat:
    """Drafts speak float seconds; mfusepy (use_ns) wants integer nanoseconds."""
    for key in ("st_atime", "st_mtime", "st_ctime"):
        v = st.get(key)
        if isinstance(v, float):
            st[key] = int(v * NS)
    return st


def statfs(write_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Free space is the write dir's (where drafts grow); files are unlimited."""
    try:
        sv = os.statvfs(write_dir)
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


def version_xattrs(r: VersionRecord, aliases: list[str]) -> dict[str, bytes]:
    """`user.artifact.*` of a version directory: its record, as text."""
    return {
        "type": r.type.encode(),
        "name": f"{r.entity}/{r.project}/{r.name}:v{r.version}".encode(),
        "version": f"v{r.version}".encode(),
        "digest": r.digest.encode(),
        "size": str(r.size).encode(),
        "file_count": str(r.file_count).encode(),
        "aliases": json.dumps(aliases).encode(),
        "description": (r.description or "").encode(),
        "metadata": json.dumps(r.metadata, sort_keys=True).encode(),
        "created_at": r.created_at.encode(),
        "id": r.id.encode(),
    }


def entry_xattrs(meta: dict[str, Any]) -> dict[str, bytes]:
    """`user.artifact.*` of a version file: digest, size, reference."""
    out = {"digest": str(meta["digest"]).encode()}
    if meta.get("size") is not None:
        out["size"] = str(meta["size"]).encode()
    if meta.get("ref"):
        out["ref"] = str(meta["ref"]).encode()
    return out
