"""Small filesystem helpers every layer shares (a leaf module, like errors: imports nothing of ours)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[str]:
    """Yield a temporary path beside `path`; when the block succeeds, rename it over `path`.

    Readers see the old file or the whole new one, never a partial write; on any failure
    (including KeyboardInterrupt) the temporary file is removed. `mode` is applied before the
    rename (mkstemp creates 0600 files, too private for downloads or files a web server serves).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def mount_table() -> list[tuple[str, str]]:
    """(mountpoint, file system type) of every mount this process sees, in mount order (from
    /proc/self/mounts: it lists dead FUSE mounts too, where os.path.ismount fails). Here, not in
    fusefs/, because the CLI reads it without loading the mount's code."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2:
                out.append((parts[1].replace("\\040", " "), parts[2]))
    return out
