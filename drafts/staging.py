"""The staged layer of a draft: every created or changed file, as a plain file on local disk.

A draft dir holds `files/` (the staged tree, paths as in the draft) and `tmp/` (copy-ups in
progress, renamed into `files/` only when complete, so a crash never leaves half a file in the
view). This layer lies on top of the stored one (overlay.py); the Draft decides which wins.

Apart from the Draft because it is the one place that knows how staged bytes sit on disk: what
a staged entry is (regular files and directories today), how one is installed atomically, how
the tree is walked for a commit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


class StagingArea:
    """`files/` and `tmp/` of one draft dir."""

    def __init__(self, root: Path) -> None:
        self.files = root / "files"
        self.tmp = root / "tmp"

    def create(self) -> None:
        self.files.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)

    def path(self, rel: str) -> Path:
        """The disk path of draft path `rel` ('' = the staged root)."""
        return self.files / rel if rel else self.files

    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, rel: str) -> list[str]:
        try:
            return os.listdir(self.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def ensure_dir(self, rel: str) -> None:
        os.makedirs(self.path(rel), exist_ok=True)

    def install(self, rel: str, source: str | os.PathLike[str] | None, mode: int) -> None:
        """Stage a copy of `source` (None: an empty file) at `rel`, atomically, via tmp/."""
        tmp = self.tmp / f"up-{uuid.uuid4().hex}"
        try:
            if source is not None:
                shutil.copyfile(source, tmp)
            else:
                tmp.touch()
            os.chmod(tmp, mode)
            os.replace(tmp, self.path(rel))
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    # -- walking (what a commit sees) -----------------------------------------------------------
    def dirs(self) -> Iterator[str]:
        """Every staged directory (draft paths), empty ones included."""
        for rel, dirnames, _filenames in self._walk():
            for d in dirnames:
                yield f"{rel}{d}"

    def regular_files(self) -> Iterator[tuple[str, Path]]:
        """Every staged regular file: (draft path, disk path). Symlinks and specials are
        skipped (the FUSE layer refuses to create them)."""
        for rel, _dirnames, filenames in self._walk():
            for fn in filenames:
                full = self.files / f"{rel}{fn}"
                if full.is_file() and not full.is_symlink():
                    yield f"{rel}{fn}", full

    def _walk(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """os.walk of the staged tree with each directory as a draft-path prefix ("" or "a/b/")."""
        if not self.files.is_dir():
            return
        base = str(self.files)
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            yield ("" if rel == "." else f"{rel}/"), dirnames, filenames
