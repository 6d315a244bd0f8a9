"""Materialize a manifest into a directory: download, checkout and verify.

Every byte comes through `Resolver.fetch`, i.e. the shared blob cache, so a version that is
already cached costs no backend read. Files are *copied* out of the cache, never hardlinked:
a user editing a downloaded file must not corrupt the cache every other process trusts.

A manifest is untrusted input (anyone who can write the store can write one), so every target
path is re-validated and checked to stay under the root, including through symlinks already in
the root, before the first byte is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from artifactfs.errors import InvalidPathError, VerifyError
from artifactfs.fsutil import atomic_path
from artifactfs.resolver.manifest import HASH_CHUNK, Manifest, ManifestEntry, b64_to_hex
from artifactfs.resolver.names import check_entry_path

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
FETCH_THREADS = 8


class Fetcher(Protocol):
    """What materializing needs of a Resolver: an entry's bytes as a cached file. A protocol,
    so this module depends on nothing above it (Resolver satisfies it structurally)."""

    def fetch(self, entry: ManifestEntry, progress: Progress | None = None) -> Path: ...


@dataclass
class DownloadResult:
    """What a download did: files written vs. already up to date (for CLI summaries)."""

    root: Path
    written: int = 0
    unchanged: int = 0
    bytes: int = 0


def md5_hex_of_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(HASH_CHUNK):
            h.update(block)
    return h.hexdigest()


def safe_target(root: Path, path: str) -> Path:
    """The absolute target of an artifact path under `root`, or InvalidPathError.

    `check_entry_path` refuses `..`, absolute paths and NUL; resolving the parent directory
    also refuses a path that would leave the root through a symlink that already exists there.
    """
    rel = check_entry_path(path)
    real_root = root.resolve()
    target = real_root / rel
    parent = target.parent.resolve()
    if parent != real_root and real_root not in parent.parents:
        raise InvalidPathError(f"artifact path {path!r} escapes {root} through a symlink")
    if target.is_symlink():
        raise InvalidPathError(f"artifact path {path!r} is a symlink in {root}; refusing to follow")
    return target


def plan(
    manifest: Manifest, root: Path, paths: Iterable[str] | None = None
) -> list[tuple[ManifestEntry, Path]]:
    """Validate every target before writing anything: paths, and file/directory clashes
    (`a` and `a/b` cannot both be files)."""
    wanted = set(paths) if paths is not None else None
    entries = [e for e in manifest if wanted is None or e.path in wanted]
    names = {e.path for e in manifest}
    for e in entries:
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise InvalidPathError(f"manifest has both {'/'.join(parts[:i])!r} and {e.path!r}")
    return [(e, safe_target(root, e.path)) for e in entries]


def _install(entry: ManifestEntry, cached: Path, target: Path) -> bool:
    """Copy a cached object to `target` atomically; False if `target` already has the bytes.
    Executable entries (`extra.executable`, kept by drafts) are 0755, others 0644."""
    if target.is_file() and entry.stored:
        st = target.stat()
        if (entry.size is None or st.st_size == entry.size) and md5_hex_of_file(
            target
        ) == b64_to_hex(entry.digest):
            if bool(st.st_mode & 0o100) != entry.executable:
                os.chmod(target, entry.file_mode)
            return False
    with atomic_path(target, mode=entry.file_mode) as tmp:
        shutil.copyfile(cached, tmp)
    return True


def download_manifest(
    resolver: Fetcher,
    manifest: Manifest,
    root: str | os.PathLike[str],
    *,
    paths: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> DownloadResult:
    """Write the manifest's files (or just `paths`) under `root`, leaving other files alone."""
    root_path = Path(root).absolute()
    root_path.mkdir(parents=True, exist_ok=True)
    todo = plan(manifest, root_path, paths)
    result = DownloadResult(root_path)

    def one(item: tuple[ManifestEntry, Path]) -> tuple[bool, int]:
        entry, target = item
        cached = resolver.fetch(entry, progress)
        return _install(entry, cached, target), entry.size or 0

    if todo:
        with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(todo))) as pool:
            for written, size in pool.map(one, todo):
                if written:
                    result.written += 1
                    result.bytes += size
                else:
                    result.unchanged += 1
    log.info(
        "downloaded %d files (%d already present) to %s",
        result.written,
        result.unchanged,
        root_path,
    )
    return result


def _local_files(root: Path) -> list[str]:
    """Artifact-style relative paths of every file (and symlink) under `root`."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for fn in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
            out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def checkout_manifest(
    resolver: Fetcher,
    manifest: Manifest,
    root: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
) -> DownloadResult:
    """Make `root` hold exactly the manifest's files: download, then DELETE everything else."""
    root_path = Path(root).absolute()
    plan(manifest, root_path)  # validate before deleting anything
    if root_path.is_dir():
        for rel in _local_files(root_path):
            if rel not in manifest:
                victim = root_path / rel
                log.info("checkout: removing %s (not in the artifact)", victim)
                victim.unlink()
        for dirpath, _dirnames, _filenames in sorted(os.walk(root_path), key=lambda t: -len(t[0])):
            if dirpath != str(root_path) and not os.listdir(dirpath):
                os.rmdir(dirpath)
    return download_manifest(resolver, manifest, root_path, progress=progress)


def verify_dir(manifest: Manifest, root: str | os.PathLike[str]) -> int:
    """Check `root` against the manifest; return the number of files checked.

    VerifyError (a ValueError) listing every file that differs, is missing, or is not part of
    the artifact, all found in one pass. External references are not verified (their bytes may
    legitimately live elsewhere), as W&B does; entries from other artifacts are.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise ValueError(f"cannot verify: {root_path} is not a directory")
    extra = [rel for rel in _local_files(root_path) if rel not in manifest]
    modified: list[str] = []
    missing: list[str] = []
    checked = 0
    for entry in manifest:
        if not entry.stored:
            continue
        target = safe_target(root_path, entry.path)
        if not target.is_file():
            missing.append(entry.path)
        elif md5_hex_of_file(target) != b64_to_hex(entry.digest):
            modified.append(entry.path)
        checked += 1
    if modified or missing or extra:
        raise VerifyError(str(root_path), sorted(modified), sorted(missing), extra)
    return checked
