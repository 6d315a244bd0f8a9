"""`MOUNT/.artifactfs/`: the mount's control directory (stats and mount facts as JSON files).

The mount opens files without an upcall (no_open, DESIGN §7) and the kernel keeps every file's
pages and attributes, so a file whose content changes cannot be re-rendered per open: the kernel
would serve the old pages, and nothing tells it otherwise without racing a reader in the middle
of the file. So stats live in files that never change: `stats.d/<any name>.json` is rendered
when the kernel first looks that name up. `stats.json` is a symlink to a new such name each time
it is resolved; the kernel caches symlink targets too (FUSE_CAP_CACHE_SYMLINKS, for aliases),
so the mount drops that target right after answering it (`changed_link`, on a thread of its
own). A `cat stats.json` thus reads numbers at most a moment old, every reader one consistent
document; a program that must see its own last action reads a name of its own choosing
(`stats.d/<unique>.json`). `mount.json` never changes: a plain file.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from artifactfs.fusefs.catalog import NotFound

FILE_MODE = stat.S_IFREG | 0o444
DIR_MODE = stat.S_IFDIR | 0o555
LINK_MODE = stat.S_IFLNK | 0o777
SNAPSHOTS = "stats.d"
KEEP = 64
"""Rendered stats snapshots kept for readers still reading them."""
NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}\.json")


class ControlDir:
    """The virtual files below `.artifactfs/`."""

    def __init__(
        self,
        stats: Callable[[], dict[str, Any]],
        mount_info: dict[str, Any],
        changed_link: Callable[[str], None] | None = None,
    ) -> None:
        self._stats = stats
        self.changed_link = changed_link
        """Told `.artifactfs/<rel>` after a symlink was resolved (drop it from the kernel)."""
        self._tag = os.urandom(4).hex()
        self._mount_info = (json.dumps(mount_info, indent=2, sort_keys=True) + "\n").encode()
        self._snapshots: OrderedDict[str, bytes] = OrderedDict()
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def _snapshot(self, name: str) -> bytes:
        """The stats rendered for `stats.d/<name>` (rendered at its first lookup)."""
        if not NAME.fullmatch(name):
            raise NotFound(f".artifactfs/{SNAPSHOTS}/{name}")
        with self._lock:
            data = self._snapshots.get(name)
        if data is None:
            data = (json.dumps(self._stats(), indent=2, sort_keys=True) + "\n").encode()
            with self._lock:
                data = self._snapshots.setdefault(name, data)
                while len(self._snapshots) > KEEP:
                    self._snapshots.popitem(last=False)
        return data

    def lookup(self, rel: str) -> tuple[int, int]:
        """(st_mode, size) of `.artifactfs/<rel>`; NotFound otherwise."""
        if rel in ("", SNAPSHOTS):
            return DIR_MODE, 0
        if rel == "stats.json":
            return LINK_MODE, len(f"{SNAPSHOTS}/{self._tag}-0.json")
        if rel == "mount.json":
            return FILE_MODE, len(self._mount_info)
        head, _, name = rel.partition("/")
        if head == SNAPSHOTS and "/" not in name:
            return FILE_MODE, len(self._snapshot(name))
        raise NotFound(f".artifactfs/{rel}")

    def readlink(self, rel: str) -> str:
        if rel != "stats.json":
            raise NotFound(f".artifactfs/{rel}")
        if self.changed_link is not None:
            self.changed_link(rel)
        return f"{SNAPSHOTS}/{self._tag}-{next(self._next)}.json"

    def listing(self, rel: str) -> list[tuple[str, int]]:
        if rel == SNAPSHOTS:
            return []  # the names are made per path walk, not listed
        if rel:
            raise NotFound(f".artifactfs/{rel}")
        return [("stats.json", LINK_MODE), ("mount.json", FILE_MODE), (SNAPSHOTS, DIR_MODE)]

    def read(self, rel: str, size: int, offset: int) -> bytes:
        if rel == "mount.json":
            data = self._mount_info
        else:
            head, _, name = rel.partition("/")
            if head != SNAPSHOTS:
                raise NotFound(f".artifactfs/{rel}")
            data = self._snapshot(name)
        return data[offset : offset + size]
