"""The mount daemon: build the file system for MountOptions, then serve it until unmounted.

`serve()` runs in the foreground process (`artifactfs mount -f`) or in the daemon that
`start_background` spawns (`python -m artifactfs.fusefs.mount serve`); it reports readiness
through the handshake pipe from libfuse's `init`. Drafts commit in `destroy`, before it returns.

Apart from mount.py (start and stop, seen from outside) because this is the only code that runs
inside the FUSE process; it is also the one place that assembles the mount's parts (`build`).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from artifactfs.cache.s3client import quiet_sdk_loggers
from artifactfs.errors import ArtifactFSError
from artifactfs.fusefs.libfuse_log import route_libfuse_log
from artifactfs.fusefs.mountpoint import (
    MountOptions,
    check_fuse,
    check_mountpoint,
    check_write_dir,
    default_log_file,
)
from artifactfs.logsafe import protect

log = logging.getLogger(__name__)


def _setup_logging(opts: MountOptions) -> None:
    log_file = Path(opts.log_file) if opts.log_file else default_log_file()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.handlers.clear()
    fh = logging.FileHandler(log_file)
    fh.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    fh.setLevel(logging.DEBUG if opts.debug else logging.INFO)
    root.addHandler(protect(fh))  # secrets never reach the log (artifactfs/logsafe.py)
    root.setLevel(logging.DEBUG if opts.debug else logging.INFO)
    if opts.foreground:

        class _OneLine(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:  # no tracebacks on a terminal
                if record.levelno < logging.WARNING:
                    return f"artifactfs: {record.getMessage()}"
                return f"artifactfs: {record.levelname.lower()}: {record.getMessage()}"

        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(logging.INFO)
        # warnings, and what an unmount commits (drafts/unmount.py's TERMINAL records)
        sh.addFilter(lambda r: r.levelno >= logging.WARNING or getattr(r, "terminal", False))
        sh.setFormatter(_OneLine())
        root.addHandler(protect(sh))
    logging.getLogger("mfusepy").setLevel(logging.WARNING if not opts.debug else logging.DEBUG)
    quiet_sdk_loggers()


def serve(opts: MountOptions, ready_fd: int | None = None) -> int:
    """Mount and serve in this process until unmounted. Returns the exit status."""

    def tell(msg: str) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            try:
                os.write(ready_fd, msg.encode()[:4000] + b"\n")
                os.close(ready_fd)
            except OSError:
                pass
            ready_fd = None

    try:
        _setup_logging(opts)
        mp = check_mountpoint(opts.mountpoint, opts.nonempty)
        check_write_dir(opts)
        check_fuse(opts.fuse_lib)
        ops, fuse_kwargs = build(opts, mp)
    except Exception as e:
        known = isinstance(e, ArtifactFSError)
        # in the foreground the caller prints a known error: once on the terminal, not twice
        (log.info if known and opts.foreground else log.error)(
            "mount failed: %s", e, exc_info=not known
        )
        tell(f"error {e}")
        if ready_fd is None and not opts.foreground:
            return 1
        raise
    import mfusepy  # after check_fuse chose the libfuse to load

    from artifactfs.fusefs import libfuse_abi

    route_libfuse_log(libfuse_abi.current())  # libfuse's own lines into our log (libfuse_log.py)

    served = False

    def ready() -> None:
        # Called inside libfuse's init: the kernel waits for it to return before it sends any
        # request, so the readahead tuning (which stats the mount) runs in a thread.
        nonlocal served
        served = True

        def after_init() -> None:
            set_readahead(mp, opts.max_readahead)
            tell("ok")

        threading.Thread(target=after_init, name="afs-ready", daemon=True).start()

    ops._ready = ready
    log.info("mounting %s (%s, %s)", mp, opts.fuse_lib, "mt" if opts.threads else "st")
    undo = ops.versions.fast.patch_main(mfusepy)  # C getattr/read_buf into libfuse's ops
    try:
        _fuse_class(mfusepy)(ops, mp, raw_fi=True, **fuse_kwargs)
    except RuntimeError as e:
        if served:  # libfuse3 reports an exit by signal as a non-zero status: a clean stop
            log.info("stopped by signal (status %s); unmounted %s", e, mp)
            return 0
        log.error("libfuse failed to mount %s: %s (see messages above)", mp, e)
        tell(f"error libfuse could not mount {mp}: status {e}")
        return 1
    finally:
        undo()
        ops.destroy("/")  # no-op when libfuse already called it
        ops.resolver.close()
    log.info("unmounted %s", mp)
    return 0


_TIMES = {"st_atime": "st_atimespec", "st_mtime": "st_mtimespec", "st_ctime": "st_ctimespec"}


def _fuse_class(mfusepy: Any) -> Any:
    """mfusepy's FUSE, but getattr fills the stat struct faster, rename(2) keeps its flags (mfusepy drops renameat2's, so
    RENAME_NOREPLACE, `mv -n`, would silently replace the target), and write_buf takes the
    path of a file unlinked meanwhile (None) instead of failing on it."""

    from artifactfs.fusefs import fusebuf  # after mfusepy chose its libfuse (fusefs/__init__)

    stat_size = ctypes.sizeof(mfusepy.c_stat)

    class FUSE(mfusepy.FUSE):
        def fgetattr(self, path: bytes | None, buf: Any, fip: Any) -> int:
            # mfusepy's own probes the struct for every key it sets; ours sets what getattr
            # returned directly (every LOOKUP of a cold read comes here: ~5 us less each)
            fusebuf.clear(buf, stat_size)
            st = buf.contents
            fh = (fip.contents if self.raw_fi else fip.contents.fh) if fip else None
            name = None if path is None else path.decode(self.encoding, self.errors)
            for key, val in self.operations.getattr(name, fh).items():
                if key in _TIMES:
                    spec = getattr(st, _TIMES[key])
                    spec.tv_sec, spec.tv_nsec = divmod(int(val), 1_000_000_000)
                else:
                    setattr(st, key, val)
            return 0

        def write_buf(self, path: bytes | None, buf: Any, offset: int, fip: Any) -> int:
            # mfusepy decodes the path unconditionally: a file unlinked meanwhile has none
            name = None if path is None else path.decode(self.encoding, self.errors)
            return int(self.operations.write_buf(name, buf, offset, fip.contents))

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return int(
                self.operations.rename(
                    old.decode(self.encoding, self.errors),
                    new.decode(self.encoding, self.errors),
                    flags,
                )
                or 0
            )

    return FUSE


def set_readahead(mp: str, nbytes: int) -> bool:
    """Raise the kernel's readahead window for this mount (best effort; needs root).

    WHY: the kernel sends a FUSE read per readahead window, and FUSE_INIT can only lower the
    window below the 128 KiB default, never raise it; the mount's backing device info in sysfs
    can. With 4 MiB (one cache block) the kernel asks for 1 MiB per request (libfuse3's
    max_pages) and a cached 1 GiB file reads ~2x faster than with 128 KiB requests
    (bench/RESULTS.md). Without permission the default stays, and reads are merely smaller.
    """
    try:
        path = f"/sys/class/bdi/{mount_device(mp)}/read_ahead_kb"
        with open(path, "w") as f:
            f.write(str(max(nbytes >> 10, 4)))
    except OSError as e:
        log.info("kernel readahead for %s left at its default: %s", mp, e)
        return False
    return True


def mount_device(mp: str, wait: float = 2.0) -> str:
    """`major:minor` of the file system mounted at `mp`, from /proc/self/mountinfo. Not by
    stat: from the daemon that is an upcall to itself, and while it is in flight the mount is
    busy (a `fusermount3 -u` right after the mount started failed with EBUSY under load)."""
    deadline = time.monotonic() + wait
    while True:
        found = None
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
                if point == mp:
                    found = fields[2]  # the last mount there is the one on top
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise OSError(errno.ENOENT, f"{mp} is not in /proc/self/mountinfo")
        time.sleep(0.05)


def build(opts: MountOptions, mp: str) -> tuple[Any, dict[str, Any]]:
    """The Operations object and the libfuse options for a mount."""
    # Imported here: `artifactfs` loads this module for every command, and these pull in
    # mfusepy (which loads libfuse, after check_fuse) and the whole resolver.
    from artifactfs.fusefs import libfuse_abi
    from artifactfs.fusefs.catalog import Catalog
    from artifactfs.fusefs.deadline import Deadlines
    from artifactfs.fusefs.draft_ops import Drafts
    from artifactfs.fusefs.draft_tree import DraftContext, DraftTree, ReadOnlyDrafts
    from artifactfs.fusefs.fastpath import FastPath
    from artifactfs.fusefs.operations import ArtifactOperations
    from artifactfs.fusefs.readahead import SiblingReadahead
    from artifactfs.fusefs.stats import MountStats
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.resolver.version_index import index_dir
    from artifactfs.settings import load_config

    operations: type[ArtifactOperations] = ArtifactOperations
    if opts.passthrough:  # refused in one line where it cannot be had (passthrough.unavailable)
        from artifactfs.fusefs.passthrough import PassthroughOperations, check

        check(libfuse_abi.current(), opts.write_cache and not opts.read_only)
        operations = PassthroughOperations
    config = load_config(registry=opts.registry, **opts.overrides)
    ttl = config.metadata_ttl if opts.ttl is None else opts.ttl
    resolver = Resolver.open(config, ttl=ttl)
    stats = MountStats()
    catalog = Catalog(
        resolver.registry, index_dir(config.cache_dir), stats, Deadlines(config.timeout)
    )
    ctx = DraftContext(
        resolver=resolver,
        config=config,
        mountpoint=mp,
        uid=os.getuid(),
        gid=os.getgid(),
        attr_timeout=opts.attr_timeout,
        mount_time=time.time(),
    )
    drafts: DraftTree = ReadOnlyDrafts(ctx) if opts.read_only else Drafts(ctx)
    info = {
        "pid": os.getpid(),
        "mountpoint": mp,
        "registry": config.registry,
        "cache_dir": str(config.cache_dir),
        "write_dir": str(config.write_dir),
        "ttl": ttl,
        "deadline": config.timeout,
        "attr_timeout": opts.attr_timeout,
        "fuse_lib": opts.fuse_lib,
        "threads": opts.threads,
        "drafts": type(drafts).__name__,
        "write_cache": opts.write_cache and not opts.read_only,
        "passthrough": opts.passthrough,
        "log_file": str(opts.log_file or default_log_file()),
    }
    ops = operations(
        resolver,
        catalog,
        drafts,
        stats,
        attr_timeout=opts.attr_timeout,
        entry_timeout=opts.attr_timeout,
        max_readahead=opts.max_readahead,
        write_cache=opts.write_cache and not opts.read_only,
        mount_info=info,
        readahead=SiblingReadahead(
            resolver, stats, files=opts.readahead_files, max_bytes=opts.readahead_bytes
        ),
        alias_ttl=ttl,
        fast=FastPath.load(libfuse_abi.current()),
    )
    ctx.invalidate = ops.invalidate_paths
    libfuse_abi.current().fit(ops)  # read_buf/write_buf only where libfuse's layout is known
    kwargs: dict[str, Any] = {
        "foreground": True,
        "nothreads": not opts.threads,
        "fsname": "artifactfs",
        "subtype": "artifactfs",
        "default_permissions": True,
        "entry_timeout": opts.attr_timeout,
        "attr_timeout": opts.attr_timeout,
        "negative_timeout": 0,
    }
    if opts.allow_other:
        kwargs["allow_other"] = True
    if opts.read_only:
        # a read-only superblock: writable opens fail with EROFS in the kernel, and reads do not
        # invalidate atime (on a writable mount every READ makes the next stat a GETATTR)
        kwargs["ro"] = True
    if opts.fuse_lib == "fuse":
        kwargs["big_writes"] = True
        kwargs["max_read"] = 1 << 20
    return ops, kwargs
