"""`MOUNT/.artifactfs/`: the mount's control directory (stats, mount facts and refused versions
as JSON files).

Files are rendered when opened and served from that snapshot with direct I/O, so every `cat`
sees current numbers while a reader that seeks gets one consistent document.
"""

from __future__ import annotations

import itertools
import json
import stat
import threading
from collections.abc import Callable
from typing import Any

from artifactfs.fusefs.catalog import NotFound

FILE_MODE = stat.S_IFREG | 0o444


class ControlDir:
    """The virtual files below `.artifactfs/`."""

    def __init__(
        self,
        stats: Callable[[], dict[str, Any]],
        mount_info: dict[str, Any],
        errors: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._files: dict[str, Callable[[], dict[str, Any]]] = {
            "stats.json": stats,
            "mount.json": lambda: mount_info,
            "errors.json": errors or dict,
        }
        self._open: dict[int, bytes] = {}
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def _render(self, rel: str) -> bytes:
        fn = self._files.get(rel)
        if fn is None:
            raise NotFound(f".artifactfs/{rel}")
        return (json.dumps(fn(), indent=2, sort_keys=True) + "\n").encode()

    def lookup(self, rel: str) -> tuple[str, int]:
        """("dir", 0) for the directory, ("file", size-now) for a file; NotFound otherwise."""
        if not rel:
            return "dir", 0
        return "file", len(self._render(rel))

    def listing(self, rel: str) -> list[tuple[str, int]]:
        if rel:
            raise NotFound(f".artifactfs/{rel}")
        return [(name, FILE_MODE) for name in self._files]

    def open(self, rel: str) -> int:
        data = self._render(rel)
        with self._lock:
            fh = next(self._next)
            self._open[fh] = data
        return fh

    def read(self, fh: int, size: int, offset: int) -> bytes:
        with self._lock:
            data = self._open.get(fh, b"")
        return data[offset : offset + size]

    def release(self, fh: int) -> None:
        with self._lock:
            self._open.pop(fh, None)
