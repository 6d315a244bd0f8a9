"""Start and stop a mount: foreground, or a background daemon with a readiness handshake.

WHY a handshake: `artifactfs mount` must return only once the mount answers (scripts run `ls`
on the next line), and must report why it failed when it did. The background mode therefore
spawns `python -m artifactfs.fusefs.mount serve` in its own session with a pipe; the child
(serve.py) writes "ok" from libfuse's `init` (the kernel mount exists and the loop is about to
serve) or an error line, and the parent waits for one of them, or for the child to die.

Stopping: `artifactfs unmount`, `fusermount3 -u`, Ctrl-C and SIGTERM all end the libfuse loop
(libfuse installs its own SIGINT/SIGTERM/SIGHUP handlers), which unmounts and calls `destroy`,
where drafts commit; `unmount()` waits for the daemon to exit so that commit has finished.

Threading and library (measured, see bench/RESULTS.md and docs/SEMANTICS.md): libfuse3 with
the multi-threaded loop is the default. A single-threaded loop is faster on tiny cached reads,
but a backend fetch blocks every other request, so `ls` in another terminal would freeze.

This module is the mount's public face (`__all__`): options and checks come from mountpoint.py,
the serving process from serve.py.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from artifactfs.fusefs.mountpoint import (
    DEFAULT_ATTR_TIMEOUT,
    MountError,
    MountOptions,
    check_fuse,
    check_mountpoint,
    check_write_dir,
    default_log_file,
    is_mounted,
)
from artifactfs.fusefs.serve import build, serve, set_readahead

__all__ = [
    "DEFAULT_ATTR_TIMEOUT",
    "READY_TIMEOUT",
    "MountError",
    "MountOptions",
    "build",
    "check_fuse",
    "check_mountpoint",
    "default_log_file",
    "is_mounted",
    "serve",
    "set_readahead",
    "start_background",
    "unmount",
]

READY_TIMEOUT = 60.0


def start_background(opts: MountOptions, timeout: float = READY_TIMEOUT) -> int:
    """Start the daemon and return its pid once the mount is usable (MountError otherwise)."""
    mp = check_mountpoint(opts.mountpoint, opts.nonempty)
    check_write_dir(opts)
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
