"""Materialize a manifest into a directory: download, checkout and verify.

Every byte comes through `Resolver.fetch`, i.e. the shared blob cache, so a version that is
already cached costs no backend read. Files are *copied* out of the cache, never hardlinked:
a user editing a downloaded file must not corrupt the cache every other process trusts.

When the cache cannot hold the data (its disk is full), or the caller asks (`skip_cache`, W&B's
option), files are written straight into the destination instead (`Resolver.fetch_to`: streamed,
hashed on the way and verified before the rename into place), with one warning per download;
only a full destination is an error (DestinationFullError, one line naming what was being
written and how much room it needs).

A manifest is untrusted input (anyone who can write the store can write one), so every target
path is re-validated and checked to stay under the root, including through symlinks already in
the root, before the first byte is written.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from artifactfs.cache.direct import cache_lost
from artifactfs.cache.references.file import local_file_of
from artifactfs.errors import CacheError, DestinationFullError, InvalidPathError, VerifyError
from artifactfs.fsutil import atomic_path
from artifactfs.resolver.manifest import HASH_CHUNK, Manifest, ManifestEntry, b64_to_hex
from artifactfs.resolver.names import PATH_MAX, check_entry_path, shown

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
FETCH_THREADS = 8
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Fetcher(Protocol):
    """What materializing needs of a Resolver: an entry's bytes as a cached file, or written
    into a file without the cache. A protocol, so this module depends on nothing above it
    (Resolver satisfies it structurally)."""

    def fetch(self, entry: ManifestEntry, progress: Progress | None = None) -> Path: ...

    def fetch_to(
        self, entry: ManifestEntry, dest: BinaryIO, progress: Progress | None = None
    ) -> int: ...


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
    if len(os.fsencode(target)) >= PATH_MAX:
        raise InvalidPathError(
            f"artifact path {shown(path)} is too long to download under {shown(str(root))}: "
            f"{len(os.fsencode(target))} bytes, Linux allows at most {PATH_MAX - 1}"
        )
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
    for e in entries:
        if e.stored:
            b64_to_hex(e.digest, e.path)  # InvalidDigestError before anything is written
    names = {e.path for e in manifest}
    for e in entries:
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise InvalidPathError(f"manifest has both {'/'.join(parts[:i])!r} and {e.path!r}")
    return [(e, safe_target(root, e.path)) for e in entries]


def _up_to_date(entry: ManifestEntry, target: Path) -> bool:
    if not target.is_file() or not entry.stored:
        return False
    if entry.size is not None and target.stat().st_size != entry.size:
        return False
    return md5_hex_of_file(target) == b64_to_hex(entry.digest, entry.path)


def _destination_full(entry: ManifestEntry, target: Path, e: OSError) -> DestinationFullError:
    need = f" (the file has {entry.size} bytes)" if entry.size is not None else ""
    return DestinationFullError(
        errno.ENOSPC,
        f"no space left on the destination while writing {shown(str(target))}{need}: "
        f"{os.strerror(e.errno or errno.ENOSPC)}; free space there or download elsewhere",
    )


def file_mode(entry: ManifestEntry) -> int:
    """Permission bits of a local copy: 0755 for executables, else 0644 (`entry.file_mode`);
    for a `file://` reference never wider than the referenced file's own bits, so a copy of a
    0600 file stays 0600 (0600 if it cannot be stat'ed: then it was served from the cache)."""
    mode = entry.file_mode
    local = local_file_of(entry.ref)
    if local is not None:
        try:
            mode &= os.stat(local).st_mode & 0o777
        except OSError:
            mode &= 0o600
    return mode


def _install(entry: ManifestEntry, cached: Path, target: Path) -> bool:
    """Copy a cached object to `target` atomically; False if `target` already has the bytes.
    Executable entries (`extra.executable`, kept by drafts) are 0755, others 0644 (references
    to local files: see `file_mode`)."""
    mode = file_mode(entry)
    if _up_to_date(entry, target):
        current = target.stat().st_mode & 0o777
        if bool(current & 0o100) != entry.executable or current & ~mode:
            os.chmod(target, mode)
        return False
    try:
        with atomic_path(target, mode=mode) as tmp:
            shutil.copyfile(cached, tmp)
    except OSError as e:
        if e.errno in NO_SPACE:
            raise _destination_full(entry, target, e) from e
        raise
    return True


def _install_direct(
    resolver: Fetcher, entry: ManifestEntry, target: Path, progress: Progress | None
) -> bool:
    """Write an entry straight into `target` (not through the cache), verified before the
    rename; False if `target` already has the bytes."""
    if _up_to_date(entry, target):
        return False
    try:
        with atomic_path(target, mode=file_mode(entry)) as tmp, open(tmp, "wb") as f:
            resolver.fetch_to(entry, f, progress)
    except OSError as e:
        if e.errno in NO_SPACE and not isinstance(e, CacheError):
            raise _destination_full(entry, target, e) from e
        raise
    return True


class _Progress:
    """Counts one file's progress, so a fill abandoned half-way can be taken back."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.n = 0

    def __call__(self, n: int) -> None:
        self.n += n
        if self.progress is not None:
            self.progress(n)

    def undo(self) -> None:
        if self.progress is not None and self.n:
            self.progress(-self.n)
        self.n = 0


class _Direct:
    """Whether this download writes straight into the destination (thread-safe, warns once)."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self._lock = threading.Lock()

    def switch(self, e: OSError, root: Path) -> None:
        with self._lock:
            if self.on:
                return
            self.on = True
        log.warning("%s; writing the files straight into %s instead (not cached)", e, root)


def download_manifest(
    resolver: Fetcher,
    manifest: Manifest,
    root: str | os.PathLike[str],
    *,
    paths: Iterable[str] | None = None,
    progress: Progress | None = None,
    skip_cache: bool = False,
) -> DownloadResult:
    """Write the manifest's files (or just `paths`) under `root`, leaving other files alone.

    Through the cache, unless `skip_cache` or the cache's disk is full (then straight into
    `root`, see the module docstring)."""
    root_path = Path(root).absolute()
    root_path.mkdir(parents=True, exist_ok=True)
    todo = plan(manifest, root_path, paths)
    result = DownloadResult(root_path)
    direct = _Direct(skip_cache)

    def one(item: tuple[ManifestEntry, Path]) -> tuple[bool, int]:
        entry, target = item
        if not direct.on:
            counted = _Progress(progress)
            try:
                cached = resolver.fetch(entry, counted)
            except OSError as e:  # the cache's disk full, or its directory gone or read-only
                if not (isinstance(e, CacheError) and e.errno in NO_SPACE) and not cache_lost(e):
                    raise
                counted.undo()
                direct.switch(e, root_path)
            else:
                return _install(entry, cached, target), entry.size or 0
        return _install_direct(resolver, entry, target, progress), entry.size or 0

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

    VerifyError (a ValueError) listing every file that differs (in size, checked first, or
    MD5), is missing, or is not part of the artifact, all found in one pass. External
    references are not verified (their bytes may legitimately live elsewhere), as W&B does;
    entries from other artifacts are.
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
        elif entry.size is not None and target.stat().st_size != entry.size:
            modified.append(entry.path)  # cheap, and a manifest's size must hold too
        elif md5_hex_of_file(target) != b64_to_hex(entry.digest, entry.path):
            modified.append(entry.path)
        checked += 1
    if modified or missing or extra:
        raise VerifyError(str(root_path), sorted(modified), sorted(missing), extra)
    return checked
