"""`artifactfs export`: copy a registry into a directory tree any static web server can host.

The tree holds every key of the source registry as a file at the same path, plus one listing
index per directory (`<dir>/.index.json`, convention in resolver/backends/http.py), so that
`registry=http(s)://host/path/` works as a read-only registry (HttpStore).

Consistency while writers keep committing: records (`registry/`, `runs/`) are listed before
content (`manifests/`, `blobs/`). A commit writes blobs, then its manifest, then its version
record, so every record the export saw refers to content that already existed when content was
listed afterwards. Blobs are verified against their MD5 key while they are copied.

Re-exporting into the same directory is incremental: content-addressed objects already present
are kept, mutable records rewritten only when they changed, and files that vanished from the
source are removed. Everything is written to a hidden temporary name and renamed into place, so
a web server never serves a half-written file. A non-empty directory that is not a previous
export is refused (we would otherwise delete someone's files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from artifactfs.errors import ArtifactFSError, DigestMismatchError
from artifactfs.fsutil import atomic_path
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.backends.http import INDEX_FORMAT, INDEX_NAME

log = logging.getLogger(__name__)

EXPORT_THREADS = 8
RECORD_PREFIXES = ("registry/", "runs/")
"""Listed first: see the module docstring (records before the content they refer to)."""
IMMUTABLE_PREFIXES = ("blobs/", "manifests/", "blockdigests/")
SKIP_PREFIXES = ("probe-conditional-writes-",)
"""Transient keys of the S3 backend's probe, never part of a registry."""


_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


class ExportError(ArtifactFSError, ValueError):
    """The export destination cannot be used (not empty and not a previous export)."""


@dataclass
class ExportStats:
    objects: int = 0
    copied: int = 0
    unchanged: int = 0
    removed: int = 0
    indexes: int = 0
    bytes_copied: int = 0


class _HashingWriter:
    """Write-through file wrapper that hashes, to verify blobs as they are copied."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.md5 = hashlib.md5()

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        return self.f.write(data)


def _source_keys(src: Store) -> list[str]:
    ordered: dict[str, None] = {}
    for prefix in (*RECORD_PREFIXES, ""):
        for key in src.list(prefix):
            if not key.startswith(SKIP_PREFIXES) and not key.rsplit("/", 1)[-1].startswith("."):
                ordered.setdefault(key, None)
    return list(ordered)


def _check_destination(dest: Path) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a directory")
    if any(dest.iterdir()) and not (dest / INDEX_NAME).is_file():
        raise ExportError(
            f"{dest} is not empty and is not a previous artifactfs export; choose an empty "
            "or new directory"
        )


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    # 0644: served by a web server running as another user
    with atomic_path(path, mode=0o644) as tmp, open(tmp, "wb") as f:
        write(f)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def _copy(src: Store, key: str, dest: Path, stats: ExportStats, lock: threading.Lock) -> None:
    target = dest / key
    if key.startswith(IMMUTABLE_PREFIXES) and target.is_file():
        with lock:
            stats.unchanged += 1
        return
    expected = key[len("blobs/md5/") :].replace("/", "") if key.startswith("blobs/md5/") else ""
    if _MD5_HEX.match(expected):
        written = [0]

        def write(f: BinaryIO) -> None:
            w = _HashingWriter(f)
            # _HashingWriter has what download_to uses (write, no seek: sequential), not all
            # of BinaryIO
            written[0] = src.download_to(key, w)  # type: ignore[arg-type]
            if w.md5.hexdigest() != expected:
                raise DigestMismatchError(
                    f"{src.url}: blob {key} does not match its digest (md5 {w.md5.hexdigest()})"
                )

        _atomic_write(target, write)
        size = written[0]
    else:
        data, _ = src.get(key)
        size = len(data)
        try:
            if target.is_file() and target.read_bytes() == data:
                with lock:
                    stats.unchanged += 1
                return
        except OSError:
            pass
        _atomic_write_bytes(target, data)
    with lock:
        stats.copied += 1
        stats.bytes_copied += size


def _directories(keys: Iterable[str]) -> dict[str, tuple[set[str], set[str]]]:
    """directory prefix ("" or "a/b/") -> (child dirs, child files)."""
    tree: dict[str, tuple[set[str], set[str]]] = {"": (set(), set())}
    for key in keys:
        parts = key.split("/")
        prefix = ""
        for i, part in enumerate(parts):
            dirs, files = tree.setdefault(prefix, (set(), set()))
            if i == len(parts) - 1:
                files.add(part)
            else:
                dirs.add(part)
                prefix = f"{prefix}{part}/"
    return tree


def _prune(dest: Path, keep: set[str]) -> int:
    """Remove files of an earlier export that are no longer in the source, and directories left
    empty; return how many files. Hidden files and directories (`.git`...) are left alone."""
    removed = 0
    visited: list[str] = []
    for dirpath, dirnames, filenames in os.walk(dest):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, dest)
        visited.append(dirpath)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name.startswith(".tmp-export-"):  # left by an interrupted export
                os.unlink(path)
            elif not name.startswith("."):
                key = name if rel == "." else f"{rel}/{name}"
                if key not in keep:
                    os.unlink(path)
                    removed += 1
    for dirpath in reversed(visited[1:]):  # deepest first
        entries = set(os.listdir(dirpath))
        if entries <= {INDEX_NAME}:
            for name in entries:
                os.unlink(os.path.join(dirpath, name))
            os.rmdir(dirpath)
    return removed


def export_registry(
    src: Store,
    dest: str | os.PathLike[str],
    *,
    threads: int = EXPORT_THREADS,
    progress: Callable[[int], None] | None = None,
) -> ExportStats:
    """Copy every key of `src` under `dest` and write the listing indexes; see the module doc.

    `progress` is called with 1 per object handled (for a progress bar)."""
    dest = Path(dest).expanduser().resolve()
    _check_destination(dest)
    dest.mkdir(parents=True, exist_ok=True)
    keys = _source_keys(src)
    stats = ExportStats(objects=len(keys))
    lock = threading.Lock()

    def one(key: str) -> None:
        _copy(src, key, dest, stats, lock)
        if progress:
            progress(1)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for _ in pool.map(one, keys):
            pass
    stats.removed = _prune(dest, set(keys))
    tree = _directories(keys)
    # Deepest first and the root last: the root index marks a complete export.
    for prefix in sorted(tree, key=lambda p: (-p.count("/"), p)):
        dirs, files = tree[prefix]
        body = json.dumps(
            {"format": INDEX_FORMAT, "dirs": sorted(dirs), "files": sorted(files)},
            separators=(",", ":"),
        ).encode()
        target = dest / prefix / INDEX_NAME
        if not (target.is_file() and target.read_bytes() == body):
            _atomic_write_bytes(target, body)
        stats.indexes += 1
    log.info(
        "exported %d objects from %s to %s (%d copied, %d unchanged, %d removed)",
        stats.objects,
        src.url,
        dest,
        stats.copied,
        stats.unchanged,
        stats.removed,
    )
    return stats
