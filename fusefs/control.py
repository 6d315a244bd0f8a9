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
(`stats.d/<unique>.json`). `errors.json` (versions the mount refused, and why) works the same
way over `errors.d/`. `mount.json` never changes: a plain file.
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
        errors: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._documents: dict[str, Callable[[], dict[str, Any]]] = {
            "stats": stats,
            "errors": errors or dict,
        }
        """`<doc>.json` links to a fresh `<doc>.d/<name>.json`, rendered at its first lookup."""
        self.changed_link = changed_link
        """Told `.artifactfs/<rel>` after a symlink was resolved (drop it from the kernel)."""
        self._tag = os.urandom(4).hex()
        self._mount_info = (json.dumps(mount_info, indent=2, sort_keys=True) + "\n").encode()
        self._snapshots: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def _snapshot(self, doc: str, name: str) -> bytes:
        """The document rendered for `<doc>.d/<name>` (rendered at its first lookup)."""
        if not NAME.fullmatch(name):
            raise NotFound(f".artifactfs/{doc}.d/{name}")
        key = (doc, name)
        with self._lock:
            data = self._snapshots.get(key)
        if data is None:
            rendered = self._documents[doc]()
            data = (json.dumps(rendered, indent=2, sort_keys=True) + "\n").encode()
            with self._lock:
                data = self._snapshots.setdefault(key, data)
                while len(self._snapshots) > KEEP:
                    self._snapshots.popitem(last=False)
        return data

    def _split(self, rel: str) -> tuple[str, str] | None:
        """(doc, name) when `rel` is `<doc>.d/<name>`."""
        head, _, name = rel.partition("/")
        doc = head.removesuffix(".d")
        if head.endswith(".d") and doc in self._documents and name and "/" not in name:
            return doc, name
        return None

    def _link_doc(self, rel: str) -> str | None:
        doc = rel.removesuffix(".json")
        return doc if rel.endswith(".json") and doc in self._documents else None

    def lookup(self, rel: str) -> tuple[int, int]:
        """(st_mode, size) of `.artifactfs/<rel>`; NotFound otherwise."""
        if rel == "" or (rel.endswith(".d") and rel[:-2] in self._documents):
            return DIR_MODE, 0
        doc = self._link_doc(rel)
        if doc is not None:
            return LINK_MODE, len(f"{doc}.d/{self._tag}-0.json")
        if rel == "mount.json":
            return FILE_MODE, len(self._mount_info)
        snap = self._split(rel)
        if snap is not None:
            return FILE_MODE, len(self._snapshot(*snap))
        raise NotFound(f".artifactfs/{rel}")

    def readlink(self, rel: str) -> str:
        doc = self._link_doc(rel)
        if doc is None:
            raise NotFound(f".artifactfs/{rel}")
        if self.changed_link is not None:
            self.changed_link(rel)
        return f"{doc}.d/{self._tag}-{next(self._next)}.json"

    def listing(self, rel: str) -> list[tuple[str, int]]:
        if rel.endswith(".d") and rel[:-2] in self._documents:
            return []  # the names are made per path walk, not listed
        if rel:
            raise NotFound(f".artifactfs/{rel}")
        out = [("mount.json", FILE_MODE)]
        for doc in self._documents:
            out += [(f"{doc}.json", LINK_MODE), (f"{doc}.d", DIR_MODE)]
        return out

    def read(self, rel: str, size: int, offset: int) -> bytes:
        if rel == "mount.json":
            data = self._mount_info
        else:
            snap = self._split(rel)
            if snap is None:
                raise NotFound(f".artifactfs/{rel}")
            data = self._snapshot(*snap)
        return data[offset : offset + size]
