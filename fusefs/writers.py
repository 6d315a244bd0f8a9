"""Which files below a mount path are open for writing right now, in any process we can see.

WHY: a commit must not snapshot a file while a program is still writing it (the drafts engine
refuses with DraftBusyError). With no_open (operations.py) the kernel never tells the mount
that a file was opened or closed, so there is nothing to count in the daemon; the kernel's own
record is /proc: every process's fds (`/proc/PID/fd/N` names the path, `fdinfo` the open
flags). Asked once per commit, so scanning every process (a few thousand readlinks) is cheap.

Processes of other users are invisible without root, and so are processes in other mount
namespaces (their paths differ): both are outside what a private mount serves anyway.
"""

from __future__ import annotations

import os


def _write_flags(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return (int(line.split()[1], 8) & os.O_ACCMODE) != os.O_RDONLY
    except (OSError, ValueError):
        pass
    return False


def open_for_writing(root: str) -> int:
    """File descriptors, of any visible process but this one, open for writing on `root` or
    anything below it (deleted files included: a writer still holds them)."""
    root = os.path.realpath(root)
    prefix = root.rstrip("/") + "/"
    me = str(os.getpid())
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if (target == root or target.startswith(prefix)) and _write_flags(pid, fd):
                count += 1
    return count
