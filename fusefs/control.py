"""`MOUNT/.artifactfs/`: the mount's control directory (stats and mount facts as JSON files).

The mount opens files without an upcall (no_open, DESIGN §7) and the kernel keeps their pages
and attributes, so a changing file cannot be rendered per open. Instead a file is rendered when
the kernel asks for its attributes (its size must match what is read) and served from that
snapshot; after a read of a changing file (stats.json) its kernel pages and attributes are
dropped (`on_read`, run by the mount on a thread of its own), so the next `cat` sees current
numbers and a reader gets one consistent document.
"""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Callable
from typing import Any

from artifactfs.fusefs.catalog import NotFound

FILE_MODE = stat.S_IFREG | 0o444
CHANGING = frozenset({"stats.json"})


class ControlDir:
    """The virtual files below `.artifactfs/`."""

    def __init__(
        self,
        stats: Callable[[], dict[str, Any]],
        mount_info: dict[str, Any],
        on_read: Callable[[str], None] | None = None,
    ) -> None:
        self._files: dict[str, Callable[[], dict[str, Any]]] = {
            "stats.json": stats,
            "mount.json": lambda: mount_info,
        }
        self._snapshots: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.on_read = on_read
        """Told the relative path after a changing file was read (drop its kernel cache)."""

    def _render(self, rel: str) -> bytes:
        fn = self._files.get(rel)
        if fn is None:
            raise NotFound(f".artifactfs/{rel}")
        return (json.dumps(fn(), indent=2, sort_keys=True) + "\n").encode()

    def lookup(self, rel: str) -> tuple[str, int]:
        """("dir", 0) for the directory, ("file", size) for a file (rendered now, and kept
        for the reads that follow); NotFound otherwise."""
        if not rel:
            return "dir", 0
        data = self._render(rel)
        with self._lock:
            self._snapshots[rel] = data
        return "file", len(data)

    def listing(self, rel: str) -> list[tuple[str, int]]:
        if rel:
            raise NotFound(f".artifactfs/{rel}")
        return [(name, FILE_MODE) for name in self._files]

    def read(self, rel: str, size: int, offset: int) -> bytes:
        with self._lock:
            data = self._snapshots.get(rel)
        if data is None:
            data = self._render(rel)
        if rel in CHANGING and self.on_read is not None:
            self.on_read(rel)
        return data[offset : offset + size]
