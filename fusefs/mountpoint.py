"""What a mount is told (MountOptions) and what is checked before one starts.

Shared by the process that starts or stops a mount (mount.py) and the one that serves it
(serve.py), so each can check a mountpoint, or say why FUSE is missing, without the other.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactfs.errors import ArtifactFSError
from artifactfs.fsutil import mount_table
from artifactfs.fusefs.libfuse_abi import choose_libfuse

DEFAULT_ATTR_TIMEOUT = 3600.0


class MountError(ArtifactFSError, OSError):
    """The mount could not start or stop (bad mountpoint, no FUSE, busy, daemon failure)."""


@dataclass
class MountOptions:
    """Everything `artifactfs mount` can be told. JSON-serializable (handed to the daemon)."""

    mountpoint: str
    registry: str | None = None
    ttl: float | None = None
    """Seconds before aliases and listings are re-resolved (default: config metadata_ttl)."""
    attr_timeout: float = DEFAULT_ATTR_TIMEOUT
    """Kernel entry/attr timeout. Long: every named thing in a version is immutable."""
    allow_other: bool = False
    foreground: bool = False
    fuse_lib: str = "fuse3"
    """`fuse3` or `fuse` (libfuse2); chosen by measurement, kept selectable for benches."""
    threads: bool = True
    read_only: bool = False
    """Do not load drafts: every write is EROFS."""
    write_cache: bool = False
    """Ask for the kernel's write-back cache: small draft writes are batched in the kernel
    (local-disk speed), but then every close invalidates the file's st_blocks, so each later
    open of ANY file (version files included) costs one GETATTR upcall. Off by default: the
    mount's first job is reading (docs/SEMANTICS.md, "Connection modes")."""
    passthrough: bool = False
    """Open wholly cached version files with FUSE passthrough (fusefs/passthrough.py): big
    files at local-disk speed; every open then costs a request (small files pay)."""
    nonempty: bool = False
    """Mount over a directory that has entries (hidden until unmount); refused otherwise."""
    max_readahead: int = 4 << 20
    """Kernel readahead window (set via sysfs when permitted, see set_readahead)."""
    readahead_files: int = 1024
    """Sibling read-ahead window, in files (0: off); remote stores only (fusefs/readahead.py)."""
    readahead_bytes: int = 256 << 20
    """Sibling read-ahead window, in bytes."""
    log_file: str | None = None
    debug: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    """Config overrides (cache_dir, write_dir, ...)."""


def default_log_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "artifactfs" / "mount.log"


def is_mounted(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a mount point (per /proc/self/mounts; works for dead FUSE mounts)."""
    target = os.path.realpath(path)
    try:
        return any(mp == target for mp, _ in mount_table())
    except OSError:
        return os.path.ismount(target)


def _mount_type(path: str) -> str | None:
    """The file system type mounted at `path` (the one on top), or None."""
    target = os.path.realpath(path)
    try:
        types = [kind for mp, kind in mount_table() if mp == target]
    except OSError:
        return None
    return types[-1] if types else None


def clean_dead_mount(mp: str) -> bool:
    """Detach a FUSE mount at `mp` whose daemon is gone (ENOTCONN: killed with -9, crashed),
    with one log line; True if it did. WHY: the kernel keeps such a mount until someone
    unmounts it, and telling the user "busy" for a mount nobody serves made them run
    `artifactfs unmount` first for nothing. A live mount (stat works) is never touched."""
    if not (_mount_type(mp) or "").startswith("fuse"):
        return False
    try:
        os.statvfs(mp)  # always asks the daemon (a stat may be answered from the kernel's cache)
        return False
    except OSError as e:
        if e.errno != errno.ENOTCONN:
            return False
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    cmd = [tool, "-u", "-z", mp] if tool else ["umount", "-l", mp]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or is_mounted(mp):
        return False
    logging.getLogger(__name__).warning(
        "%s: cleaned up a dead mount (its daemon had exited) before mounting again", mp
    )
    return True


def check_mountpoint(path: str, nonempty: bool = False) -> str:
    """The absolute mountpoint, or MountError saying what is wrong with it. A dead FUSE mount
    left there by a killed daemon is cleaned first (clean_dead_mount)."""
    mp = os.path.abspath(path)
    if is_mounted(mp) and not clean_dead_mount(mp):
        raise MountError(f"{mp} is busy: something is already mounted there (unmount it first)")
    if not os.path.exists(mp):
        raise MountError(f"mountpoint {mp} does not exist (create it with mkdir)")
    if not os.path.isdir(mp):
        raise MountError(f"mountpoint {mp} is not a directory")
    if not nonempty:
        try:
            count = len(os.listdir(mp))
        except OSError as e:
            raise MountError(f"cannot read mountpoint {mp}: {e.strerror}") from e
        if count:
            raise MountError(
                f"{mp} is not empty ({count} entries): the mount would hide them until "
                "unmount; use an empty directory, or --nonempty to mount over them"
            )
    return mp


def check_write_dir(opts: MountOptions) -> None:
    """MountError when another mount owns the write dir this mount's drafts would use: two
    mounts cannot share drafts (the second would wait for the lock, then fail obscurely)."""
    if opts.read_only:
        return
    from artifactfs.drafts.commit_requests import lock_holder
    from artifactfs.settings import load_config

    write_dir = load_config(registry=opts.registry, **opts.overrides).write_dir
    holder = lock_holder(write_dir)
    if holder is None or holder.get("kind") != "mount":
        return  # free, or a CLI commit that will let go: the mount waits for it
    raise MountError(
        f"the drafts folder {write_dir} is in use by another mount (pid {holder.get('pid', '?')}); "
        "give this mount its own with --write-dir DIR, or mount it --read-only"
    )


LIBRARY_PACKAGES = {"fuse3": ("libfuse3-4", "libfuse3-3"), "fuse": ("libfuse2t64", "libfuse2")}
"""Debian/Ubuntu package names of lib<lib>, newest naming first: Debian 13 and Ubuntu >= 24.10
ship libfuse 3.17 as libfuse3-4 (soname 4) and libfuse2 as libfuse2t64 (the 64-bit time_t
rename; Ubuntu 24.04 too); Debian 12 ships libfuse3-3 and libfuse2 (scripts/setup.sh picks
the same way)."""


def library_package(lib: str = "fuse3") -> str:
    """The package that provides lib<lib> on this release (the first name its apt offers), for
    error messages; the oldest name when apt cannot tell."""
    names = LIBRARY_PACKAGES.get(lib, LIBRARY_PACKAGES["fuse3"])
    for name in names:
        try:
            out = subprocess.run(
                ["apt-cache", "policy", name], capture_output=True, text=True, timeout=20
            ).stdout
        except (OSError, subprocess.SubprocessError):
            break
        candidate = re.search(r"Candidate: (\S+)", out)
        if candidate and candidate[1] != "(none)":
            return name
    return names[-1]


def check_fuse(lib: str = "fuse3") -> None:
    """MountError unless this machine can mount FUSE file systems with `lib`."""
    if not os.path.exists("/dev/fuse"):
        raise MountError("FUSE is not available: /dev/fuse is missing (load the fuse module)")
    if not (shutil.which("fusermount3") or shutil.which("fusermount")) and os.geteuid() != 0:
        raise MountError("FUSE is not available: fusermount3 is not installed (apt install fuse3)")
    choose_libfuse(lib)
    try:  # imported here, not at the top: mfusepy loads the libfuse named above when imported
        import mfusepy  # noqa: F401
    except (OSError, AttributeError) as e:
        raise MountError(
            f"FUSE is not available: cannot load lib{lib} ({e}); install fuse3 and {library_package(lib)}"
        ) from e
    loaded = sys.modules["mfusepy"]._libfuse_path
    if (lib == "fuse3" and "fuse3" not in str(loaded)) or (
        lib == "fuse" and "fuse3" in str(loaded)
    ):
        raise MountError(f"libfuse already loaded as {loaded}; cannot switch to {lib} in-process")
