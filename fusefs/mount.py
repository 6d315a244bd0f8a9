"""Start and stop a mount: foreground, or a background daemon with a readiness handshake.

WHY a handshake: `artifactfs mount` must return only once the mount answers (scripts run `ls`
on the next line), and must report why it failed when it did. The background mode therefore
spawns `python -m artifactfs.fusefs.mount serve` in its own session with a pipe; the child
writes "ok" from libfuse's `init` (the kernel mount exists and the loop is about to serve) or an
error line, and the parent waits for one of them, or for the child to die.

Stopping: `artifactfs unmount`, `fusermount3 -u`, Ctrl-C and SIGTERM all end the libfuse loop
(libfuse installs its own SIGINT/SIGTERM/SIGHUP handlers), which unmounts and calls `destroy`,
where drafts commit; `unmount()` waits for the daemon to exit so that commit has finished.

Threading and library (measured, see bench/RESULTS.md and docs/SEMANTICS.md): libfuse3 with
the multi-threaded loop is the default. A single-threaded loop is faster on tiny cached reads,
but a backend fetch blocks every other request, so `ls` in another terminal would freeze.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artifactfs.errors import ArtifactFSError

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
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
    max_readahead: int = 4 << 20
    """Kernel readahead window (set via sysfs when permitted, see set_readahead)."""
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
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 1 and parts[1].replace("\\040", " ") == target:
                    return True
    except OSError:
        return os.path.ismount(target)
    return False


def check_mountpoint(path: str) -> str:
    """The absolute mountpoint, or MountError saying what is wrong with it."""
    mp = os.path.abspath(path)
    if is_mounted(mp):
        raise MountError(f"{mp} is busy: something is already mounted there (unmount it first)")
    if not os.path.exists(mp):
        raise MountError(f"mountpoint {mp} does not exist (create it with mkdir)")
    if not os.path.isdir(mp):
        raise MountError(f"mountpoint {mp} is not a directory")
    return mp


def check_fuse(lib: str = "fuse3") -> None:
    """MountError unless this machine can mount FUSE file systems with `lib`."""
    if not os.path.exists("/dev/fuse"):
        raise MountError("FUSE is not available: /dev/fuse is missing (load the fuse module)")
    if not (shutil.which("fusermount3") or shutil.which("fusermount")) and os.geteuid() != 0:
        raise MountError("FUSE is not available: fusermount3 is not installed (apt install fuse3)")
    os.environ["FUSE_LIBRARY_NAME"] = lib
    try:
        import mfusepy  # noqa: F401
    except (OSError, AttributeError) as e:
        raise MountError(
            f"FUSE is not available: cannot load lib{lib} ({e}); install fuse3 and libfuse3-3"
        ) from e
    loaded = sys.modules["mfusepy"]._libfuse_path  # type: ignore[attr-defined]
    if (lib == "fuse3" and "fuse3" not in str(loaded)) or (
        lib == "fuse" and "fuse3" in str(loaded)
    ):
        raise MountError(f"libfuse already loaded as {loaded}; cannot switch to {lib} in-process")


def _setup_logging(opts: MountOptions) -> None:
    log_file = Path(opts.log_file) if opts.log_file else default_log_file()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.handlers.clear()
    fh = logging.FileHandler(log_file)
    fh.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    fh.setLevel(logging.DEBUG if opts.debug else logging.INFO)
    root.addHandler(fh)
    root.setLevel(logging.DEBUG if opts.debug else logging.INFO)
    if opts.foreground:

        class _OneLine(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:  # no tracebacks on a terminal
                return f"artifactfs: {record.levelname.lower()}: {record.getMessage()}"

        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(logging.WARNING)
        sh.setFormatter(_OneLine())
        root.addHandler(sh)
    logging.getLogger("mfusepy").setLevel(logging.WARNING if not opts.debug else logging.DEBUG)


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
        mp = check_mountpoint(opts.mountpoint)
        check_fuse(opts.fuse_lib)
        ops, fuse_kwargs = build(opts, mp)
    except Exception as e:
        log.error("mount failed: %s", e, exc_info=not isinstance(e, ArtifactFSError))
        tell(f"error {e}")
        if ready_fd is None and not opts.foreground:
            return 1
        raise
    import mfusepy

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
    try:
        mfusepy.FUSE(ops, mp, raw_fi=True, **fuse_kwargs)
    except RuntimeError as e:
        if served:  # libfuse3 reports an exit by signal as a non-zero status: a clean stop
            log.info("stopped by signal (status %s); unmounted %s", e, mp)
            return 0
        log.error("libfuse failed to mount %s: %s (see messages above)", mp, e)
        tell(f"error libfuse could not mount {mp}: status {e}")
        return 1
    finally:
        ops.destroy("/")  # no-op when libfuse already called it
        ops.resolver.close()
    log.info("unmounted %s", mp)
    return 0


def set_readahead(mp: str, nbytes: int) -> bool:
    """Raise the kernel's readahead window for this mount (best effort; needs root).

    WHY: the kernel sends a FUSE read per readahead window, and FUSE_INIT can only lower the
    window below the 128 KiB default, never raise it; the mount's backing device info in sysfs
    can. With 4 MiB (one cache block) the kernel asks for 1 MiB per request (libfuse3's
    max_pages) and a cached 1 GiB file reads ~2x faster than with 128 KiB requests
    (bench/RESULTS.md). Without permission the default stays, and reads are merely smaller.
    """
    try:
        st = os.stat(mp)
        path = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
        with open(path, "w") as f:
            f.write(str(max(nbytes >> 10, 4)))
    except OSError as e:
        log.info("kernel readahead for %s left at its default: %s", mp, e)
        return False
    return True


def build(opts: MountOptions, mp: str) -> tuple[Any, dict[str, Any]]:
    """The Operations object and the libfuse options for a mount."""
    from artifactfs.config import load_config
    from artifactfs.fusefs.catalog import Catalog
    from artifactfs.fusefs.draft_ops import Drafts
    from artifactfs.fusefs.draft_tree import DraftContext, DraftTree, ReadOnlyDrafts
    from artifactfs.fusefs.operations import ArtifactOperations
    from artifactfs.fusefs.stats import MountStats
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.resolver.version_index import default_index_dir

    config = load_config(registry=opts.registry, **opts.overrides)
    ttl = config.metadata_ttl if opts.ttl is None else opts.ttl
    resolver = Resolver.open(config, ttl=ttl)
    stats = MountStats()
    catalog = Catalog(resolver.registry, default_index_dir(config.cache_dir), stats)
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
        "attr_timeout": opts.attr_timeout,
        "fuse_lib": opts.fuse_lib,
        "threads": opts.threads,
        "drafts": type(drafts).__name__,
        "log_file": str(opts.log_file or default_log_file()),
    }
    ops = ArtifactOperations(
        resolver,
        catalog,
        drafts,
        stats,
        attr_timeout=opts.attr_timeout,
        entry_timeout=opts.attr_timeout,
        max_readahead=opts.max_readahead,
        mount_info=info,
    )
    ctx.invalidate = ops.invalidate_paths
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
    if opts.fuse_lib == "fuse":
        kwargs["big_writes"] = True
        kwargs["max_read"] = 1 << 20
    return ops, kwargs


def start_background(opts: MountOptions, timeout: float = READY_TIMEOUT) -> int:
    """Start the daemon and return its pid once the mount is usable (MountError otherwise)."""
    mp = check_mountpoint(opts.mountpoint)
    opts = MountOptions(**{**asdict(opts), "mountpoint": mp, "foreground": False})
    log_file = Path(opts.log_file) if opts.log_file else default_log_file()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    opts.log_file = str(log_file)
    r, w = os.pipe()
    with open(log_file, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "artifactfs.fusefs.mount", "serve", json.dumps(asdict(opts))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            pass_fds=(w,),
            env={**os.environ, "ARTIFACTFS_READY_FD": str(w)},
            start_new_session=True,
            close_fds=True,
        )
    os.close(w)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        import select

        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 0.2)
            if ready:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                buf += chunk
                if buf.endswith(b"\n"):
                    break
            elif proc.poll() is not None:
                break
    finally:
        os.close(r)
    msg = buf.decode(errors="replace").strip()
    if msg == "ok":
        if _wait_mounted(mp, deadline):
            return proc.pid
        msg = "error the daemon started but the mount did not appear"
    if proc.poll() is None:
        proc.terminate()
    if not msg:
        msg = "error the mount daemon exited: " + _log_tail(log_file)
    raise MountError(msg.removeprefix("error ").strip() + f" (log: {log_file})")


def _wait_mounted(mp: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if is_mounted(mp):
            try:
                os.stat(os.path.join(mp, ".artifactfs"))
                return True
            except OSError:
                pass
        time.sleep(0.02)
    return False


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _daemon_pid(mp: str) -> int | None:
    try:
        with open(os.path.join(mp, ".artifactfs", "mount.json")) as f:
            return int(json.load(f)["pid"])
    except (OSError, ValueError, KeyError):
        return None


def unmount(mountpoint: str, *, lazy: bool = False, timeout: float = 600.0) -> None:
    """Unmount and wait for the daemon to finish (drafts commit in its destroy hook)."""
    mp = os.path.abspath(mountpoint)
    if not is_mounted(mp):
        raise MountError(f"{mp} is not mounted")
    pid = _daemon_pid(mp)
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool:
        cmd = [tool, "-u", *(["-z"] if lazy else []), mp]
    else:
        cmd = ["umount", *(["-l"] if lazy else []), mp]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip()
        hint = " (close files and shells using it, or use --lazy)" if "busy" in detail else ""
        raise MountError(f"cannot unmount {mp}: {detail}{hint}")
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        if _is_zombie(pid):
            return
        time.sleep(0.05)
    raise MountError(f"the mount daemon (pid {pid}) is still running after {timeout:.0f}s")


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "serve":
        opts = MountOptions(**json.loads(argv[1]))
        fd = os.environ.pop("ARTIFACTFS_READY_FD", None)
        try:
            return serve(opts, int(fd) if fd else None)
        except Exception:
            return 1
    print("usage: python -m artifactfs.fusefs.mount serve OPTIONS_JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
