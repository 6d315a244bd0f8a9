"""The stored (virtual) layer of a draft: base entries minus whiteouts plus moved entries.

A draft shows two layers: staged files on local disk (an ordinary directory tree) on top of this
one, which holds every file whose bytes are still in the store: unchanged files of the base
version, and base files renamed inside the draft (a `mv` of a 1 GiB file moves a manifest entry,
not bytes). Directories of this layer are implicit, as in a manifest: a directory exists while a
visible file lies under it, so an index of child counts answers `readdir`/`getattr` without
scanning the manifest.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from artifactfs.resolver.manifest import Manifest, ManifestEntry


def entry_to_json(entry: ManifestEntry) -> dict[str, Any]:
    return entry.to_json()


def entry_from_json(path: str, data: dict[str, Any]) -> ManifestEntry:
    return ManifestEntry.from_json(path, data)


def _parents(path: str) -> Iterator[tuple[str, str]]:
    """('a/b/c') -> ('a/b','c'), ('a','b'), ('','a'): each (dir, child) pair up to the root."""
    while path:
        parent, _, child = path.rpartition("/")
        yield parent, child
        path = parent


class Overlay:
    """Visible stored entries of a draft, with an index of implicit directories."""

    def __init__(
        self,
        base: Manifest | None,
        whiteouts: set[str],
        moves: dict[str, ManifestEntry],
    ) -> None:
        self.base = base
        self.whiteouts = whiteouts
        self.moves = moves
        self._children: dict[str, dict[str, int]] = {}
        if base is not None:
            for path in base.entries:
                if path not in whiteouts and path not in moves:
                    self._count(path, +1)
        for path in moves:
            self._count(path, +1)

    # -- index ----------------------------------------------------------------------------------
    def _count(self, path: str, delta: int) -> None:
        for parent, child in _parents(path):
            kids = self._children.setdefault(parent, {})
            n = kids.get(child, 0) + delta
            if n > 0:
                kids[child] = n
            else:
                kids.pop(child, None)
                if not kids:
                    del self._children[parent]

    # -- queries --------------------------------------------------------------------------------
    def get(self, path: str) -> ManifestEntry | None:
        """The visible stored entry at `path` (a file), or None."""
        entry = self.moves.get(path)
        if entry is not None:
            return entry
        if path in self.whiteouts or self.base is None:
            return None
        return self.base.entries.get(path)

    def is_dir(self, path: str) -> bool:
        return path in self._children

    def children(self, path: str) -> list[str]:
        return list(self._children.get(path, ()))

    def files_under(self, path: str) -> list[str]:
        """Visible stored files under directory `path` ('' = everything)."""
        prefix = f"{path}/" if path else ""
        out = [p for p in self.moves if p.startswith(prefix)]
        if self.base is not None:
            out.extend(
                p
                for p in self.base.entries
                if p.startswith(prefix) and p not in self.whiteouts and p not in self.moves
            )
        return out

    def visible(self) -> Iterator[ManifestEntry]:
        """Every visible stored entry, each with `path` set to where it shows in the draft."""
        yield from self.moves.values()
        if self.base is not None:
            for path, entry in self.base.entries.items():
                if path not in self.whiteouts and path not in self.moves:
                    yield entry

    def changed(self) -> bool:
        """Did this layer diverge from the base (anything deleted or moved)?"""
        return bool(self.moves) or any(
            self.base is not None and p in self.base.entries for p in self.whiteouts
        )

    # -- mutations (callers journal them first) -------------------------------------------------
    def remove(self, path: str) -> bool:
        """Hide the stored file at `path`; True if there was one."""
        if path in self.moves:
            del self.moves[path]
            self._count(path, -1)
            if self.base is not None and path in self.base.entries:
                self.whiteouts.add(path)
            return True
        if self.base is not None and path in self.base.entries and path not in self.whiteouts:
            self.whiteouts.add(path)
            self._count(path, -1)
            return True
        return False

    def put(self, path: str, entry: ManifestEntry) -> None:
        """Show stored content `entry` at `path` (replacing whatever stored file was there)."""
        self.remove(path)
        moved = ManifestEntry(
            path=path,
            digest=entry.digest,
            size=entry.size,
            ref=entry.ref,
            extra=dict(entry.extra),
            birth_artifact_id=entry.birth_artifact_id,
        )
        self.moves[path] = moved
        self._count(path, +1)

    def rename(self, src: str, dst: str) -> None:
        """Move a stored file, or every stored file under a directory, from `src` to `dst`
        (a stored file at `dst` is replaced, as rename(2) replaces its target)."""
        if self.get(dst) is not None:
            self.remove(dst)
        entry = self.get(src)
        if entry is not None:
            self.put(dst, entry)
            self.remove(src)
            return
        for path in self.files_under(src):
            moved = self.get(path)
            if moved is None:
                continue
            self.put(posixpath.join(dst, path[len(src) + 1 :]) if src else path, moved)
            self.remove(path)

    def apply(self, op: dict[str, Any]) -> None:
        """Replay one journal operation."""
        kind = op["op"]
        if kind == "rm":
            self.remove(op["p"])
        elif kind == "put":
            self.put(op["p"], entry_from_json(op["p"], op["e"]))
        elif kind == "mv":
            self.rename(op["s"], op["d"])
        elif kind == "rmtree":
            for path in self.files_under(op["p"]):
                self.remove(path)
