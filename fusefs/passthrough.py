"""Passthrough mode (`artifactfs mount --passthrough`): big cached files read by the kernel itself.

WHY: with the default connection (no_open, DESIGN §7) a version file's pages live in the FUSE
inode's page cache, filled through the daemon; a warm 1 GiB re-read runs at 0.5-0.7x local disk
and mmap copy-out at ~0.57x although no request reaches the daemon: the limit is the kernel's
FUSE page-cache path. FUSE passthrough (Linux >= 6.9, libfuse >= 3.17.1) lets an OPEN reply
name a *backing file*: the kernel then serves read, mmap and splice of that open file from the
backing file (here the verified blob in the cache), at local-disk speed (0.97-1.01x measured).

Its price is that the kernel must send OPEN (and RELEASE) for every file, which a small-file
dataset pays per file (20k x 4 KiB warm: 0.26-0.38x against 0.8-0.9x with no_open). So it is
a mode the user asks for, for big-file work (weights, Arrow/Parquet shards, tars), never the
default (docs/CONFIGURATION.md).

What an open does here:
- a version file whose bytes are wholly in the cache: its blob is opened, its length and seal
  checked (seals.py: written by nobody since it was verified), and that fd is registered with
  the kernel (ioctl FUSE_DEV_IOC_BACKING_OPEN, what libfuse's fuse_passthrough_open does, which
  the high-level API cannot reach: it needs the low-level request); the id goes into
  fuse_file_info.backing_id (libfuse 3.17's layout, libfuse_abi.FileInfo317), and libfuse's
  reply sets FOPEN_PASSTHROUGH. Our fd is closed at once: the kernel holds its own reference to
  the backing file while an open file uses it; the id is closed at the last RELEASE of the path
  (`Backings`: the opens of one path share one id).
- anything else (a version file not cached yet, drafts, the control directory) opens as it would
  under no_open (kept page cache, fh 0) and is served as today; a sequential reader's whole fill
  caches a big file, so its next open passes through.

Needs CAP_SYS_ADMIN (the kernel lets only it register backing files), libfuse >= 3.17.1 and a
kernel that offers FUSE_CAP_PASSTHROUGH; not with --write-cache (the kernel enables passthrough
only without write-back caching). `unavailable` says in one line which is missing; the mount
then does not start (a user who asked for it learns at once, not from a slow epoch).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import mfusepy

from artifactfs.fusefs import libfuse_abi, tree
from artifactfs.fusefs.guard import guard
from artifactfs.fusefs.operations import ArtifactOperations

log = logging.getLogger(__name__)

# The kernel's ABI (include/uapi/linux/fuse.h, protocol 7.40), not libfuse's: stable.
IOC_BACKING_OPEN = 0x4010E501
"""_IOW(FUSE_DEV_IOC_MAGIC=229, 1, struct fuse_backing_map)"""
IOC_BACKING_CLOSE = 0x4004E502
"""_IOW(229, 2, uint32_t)"""
FH_BACKING = 1 << 62
"""Marks the handle of a version file opened with passthrough (its backing id: low 32 bits)."""
FH_CACHED = 1 << 61
"""Marks the handle of a version file opened the cached way (Backings counts those)."""
CAP_SYS_ADMIN = 21
KERNEL_SINCE = (6, 9)


class BackingMap(ctypes.Structure):
    """struct fuse_backing_map: the fd to register (flags and padding must be 0)."""

    _fields_ = [("fd", ctypes.c_int32), ("flags", ctypes.c_uint32), ("padding", ctypes.c_uint64)]


def has_cap_sys_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def kernel_version() -> tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


def unavailable(abi: libfuse_abi.LibfuseAbi, *, write_cache: bool = False) -> str | None:
    """Why `--passthrough` cannot be had on this machine, as one line that says what to do;
    None when it can (the kernel still has the last word in INIT, see PassthroughOperations)."""
    if write_cache:
        return (
            "--passthrough cannot be combined with --write-cache (the kernel allows "
            "passthrough only without write-back caching): drop one of them"
        )
    if not abi.passthrough_available():
        return (
            f"--passthrough needs libfuse >= 3.17.1; this mount loaded {abi.describe()}: "
            "mount without --passthrough, or use a system with libfuse 3.17 (Debian 13)"
        )
    if not has_cap_sys_admin():
        return (
            "--passthrough needs CAP_SYS_ADMIN (the kernel lets only it register backing "
            "files): mount as root, or mount without --passthrough"
        )
    if kernel_version() < KERNEL_SINCE:
        return (
            f"--passthrough needs Linux >= 6.9 with CONFIG_FUSE_PASSTHROUGH; this is "
            f"{os.uname().release}: mount without --passthrough"
        )
    return None


def backing_open(dev_fd: int, fd: int) -> int:
    """Register `fd` as a backing file of the connection `dev_fd`; its id (OSError if not)."""
    return fcntl.ioctl(dev_fd, IOC_BACKING_OPEN, BackingMap(fd, 0, 0))


def backing_close(dev_fd: int, backing_id: int) -> None:
    fcntl.ioctl(dev_fd, IOC_BACKING_CLOSE, ctypes.c_uint32(backing_id))


class Backings:
    """Per version path, while files are open: the one backing id its passthrough opens share,
    or how many of its opens are served through the mount.

    WHY per path: the kernel puts a FUSE inode in one io mode while it is open. A second
    backing file for an inode that has one, or a passthrough open of an inode opened the cached
    way (or the reverse), fails that open with EIO. So an open of a path that is open joins what
    its earlier opens got; the choice is made again once the last one is released (thread-safe).
    """

    def __init__(self, dev_fd: int) -> None:
        self.dev_fd = dev_fd
        self._ids: dict[str, list[int]] = {}
        """path -> [backing id, open files using it]"""
        self._cached: dict[str, int] = {}
        """path -> open files served through the mount"""
        self._lock = threading.Lock()

    def open(self, path: str, verified_fd: Callable[[], int | None]) -> int | None:
        """The backing id for a new open of `path`, or None (served through the mount).
        `verified_fd` gives an fd on its checked, wholly cached blob (or None); it is closed
        here: once registered, the kernel holds its own reference."""
        with self._lock:
            held = self._ids.get(path)
            if held is not None:
                held[1] += 1
                return held[0]
            if not self._cached.get(path):
                fd = verified_fd()
                if fd is not None:
                    try:
                        backing_id = backing_open(self.dev_fd, fd)
                    except OSError as e:  # e.g. EPERM: served through the mount instead
                        log.warning("passthrough for %s refused by the kernel: %s", path, e)
                    else:
                        self._ids[path] = [backing_id, 1]
                        return backing_id
                    finally:
                        os.close(fd)
            self._cached[path] = self._cached.get(path, 0) + 1
            return None

    def release(self, path: str, backing: bool) -> None:
        with self._lock:
            if not backing:
                left = self._cached.get(path, 0) - 1
                if left > 0:
                    self._cached[path] = left
                else:
                    self._cached.pop(path, None)
                return
            held = self._ids.get(path)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del self._ids[path]
        try:
            backing_close(self.dev_fd, held[0])
        except OSError as e:
            log.warning("closing backing file %d of %s: %s", held[0], path, e)

    def __len__(self) -> int:
        return len(self._ids)


class PassthroughOperations(ArtifactOperations):
    """The mount with `open` and `release` implemented: cached version files pass through."""

    backings: Backings | None = None

    def init_with_config(self, conn: Any, config: Any) -> None:
        abi = libfuse_abi.current()
        wanted = conn is not None and abi.want(conn, libfuse_abi.CAP_PASSTHROUGH)
        super().init_with_config(conn, config)  # sets self._fuse (and reports readiness)
        get_session, session_fd = abi.function("fuse_get_session"), abi.function("fuse_session_fd")
        if wanted and self._fuse and get_session is not None and session_fd is not None:
            self.backings = Backings(int(session_fd(get_session(self._fuse))))
            log.info("passthrough on: cached version files are read by the kernel directly")
        else:
            log.warning(
                "passthrough: the kernel did not offer it (needs CONFIG_FUSE_PASSTHROUGH); "
                "every file is served through the mount as without --passthrough"
            )

    @guard
    def open(self, path: str, fi: Any) -> int:
        info = libfuse_abi.FileInfo317.from_address(ctypes.addressof(fi))
        node = tree.route(path)
        backings = self.backings
        if backings is None or not isinstance(node, tree.Version) or not node.rel:
            info.keep_cache = 1  # what no_open gives every file: pages kept across opens
            return 0
        if info.flags & os.O_ACCMODE != os.O_RDONLY:
            raise mfusepy.FuseOSError(errno.EROFS)
        backing_id = backings.open(path, lambda: self.versions.cached_fd(node, path))
        if backing_id is None:
            info.keep_cache = 1
            info.fh = FH_CACHED
            self.stats.add(passthrough_misses=1)
        else:
            # only direct_io, parallel_direct_writes and noflush may come with passthrough:
            # the kernel fails the open (EIO) on any other open flag, keep_cache included
            info.noflush = 1
            info.backing_id = backing_id
            info.fh = FH_BACKING | backing_id
            self.stats.add(passthrough_opens=1)
        return 0

    @guard
    def release(self, path: str | None, fi: Any) -> int:
        fh = libfuse_abi.FileInfo317.from_address(ctypes.addressof(fi)).fh
        if self.backings is not None and path is not None and fh & (FH_BACKING | FH_CACHED):
            self.backings.release(path, backing=bool(fh & FH_BACKING))
        return 0


def check(abi: libfuse_abi.LibfuseAbi, write_cache: bool) -> None:
    """Raise the one-line MountError of `unavailable`, if any."""
    from artifactfs.fusefs.mountpoint import MountError

    why = unavailable(abi, write_cache=write_cache)
    if why is not None:
        raise MountError(why)
