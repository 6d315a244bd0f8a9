"""The cache directory's files: where each key's whole object and blocks live, marking a file
used, checking it is still what was verified, and discarding a corrupt one.

Apart from the blob cache because every part of it (whole objects, blocks, background fills,
handles) names, touches and discards files the same way, and none of them should re-derive the
layout. Keys are `md5/<hex>` for stored content and `ref/<sha256>` for references:

    objects/<kind>/<2>/<rest>          whole objects, verified (md5 when known, size) before rename
    objects/<kind>/<2>/<rest>.seal-<fingerprint>   its seal (seals.py): empty for md5/ keys,
                                       the fetched bytes' MD5 for references
    blocks/<kind>/<2>/<rest>/<index>   fixed-size blocks of big objects read by range
    blocks/.../<index>.seal-<fingerprint>          a block's seal: the CRC-32 of its bytes, or
                                       the SHA-256 it was checked against (blockdigests.py)
    tmp/                               private temporary files of fills under way
    locks/                             cross-process fill locks of fills under way (filllock.py)

A cached file's last use is its seal's mtime (`touch`, written in batches by eviction.Toucher;
the file's own mtime for a file without a seal), which makes eviction least-recently-used across processes without any shared index
(see eviction.py). The data file itself is never touched after it was sealed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path

from artifactfs.cache.blocks import NO_SPACE, no_space_error
from artifactfs.cache.eviction import Toucher
from artifactfs.cache.filllock import FillLocks
from artifactfs.cache.seals import NO_SEAL, SHA256_MARK, Seals
from artifactfs.cache.stats import StatsRecorder
from artifactfs.errors import CacheError

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[a-z0-9]+/[A-Za-z0-9_-]{3,}$")


def content_key(md5_hex: str) -> str:
    """Cache key of stored content with this MD5."""
    return f"md5/{md5_hex}"


def reference_key(ref: str, digest: str, version_id: str | None = None) -> str:
    """Cache key of a reference: the URL pinned by the digest (and version) it was logged with."""
    h = hashlib.sha256(f"{ref}\n{digest}\n{version_id or ''}".encode()).hexdigest()
    return f"ref/{h}"


class CacheFiles:
    """The files under one cache root (created if missing; CacheError if unusable)."""

    def __init__(
        self, root: Path, stats: StatsRecorder, *, stall_seconds: float | None = None
    ) -> None:
        self.root = root
        self.objects = root / "objects"
        self.blocks = root / "blocks"
        self.tmp = root / "tmp"
        self.locks = root / "locks"
        try:
            for d in (self.objects, self.blocks, self.tmp, self.locks):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot use cache directory {root}: {e}") from e
        self._stats = stats
        self._toucher = Toucher()
        md5_objects = str(self.objects / "md5") + os.sep
        self.seals = Seals(self.tmp, stats, keyed=lambda path: path.startswith(md5_objects))
        self.fill_locks = (
            FillLocks(self.locks, self.tmp)
            if stall_seconds is None
            else FillLocks(self.locks, self.tmp, stall_seconds=stall_seconds)
        )
        # A plain dict (single operations are atomic under the GIL; cachetools caches are not
        # thread-safe), emptied when it grows past a bound.
        self._block_dirs: dict[str, str] = {}
        self._objects_str = str(self.objects)

    def restore(self) -> bool:
        """Make the cache's directories again after someone deleted them (`rm -rf` under a
        live mount); True if any was missing and now exists. A read-only or otherwise
        unusable root stays as it is (False): readers then go past the cache."""
        made = False
        for d in (self.objects, self.blocks, self.tmp, self.locks):
            if not d.is_dir():
                try:
                    d.mkdir(parents=True, exist_ok=True)
                    made = True
                except OSError:
                    return False
        if made:
            self._block_dirs.clear()  # the directories it remembers making are gone too
        return made

    @staticmethod
    def _split(key: str) -> tuple[str, str]:
        if not _KEY.match(key):
            raise CacheError(f"invalid cache key {key!r}")
        kind, name = key.split("/", 1)
        return kind, name

    def object_path(self, key: str) -> Path:
        """Where the whole object of `key` lives (whether or not it is cached)."""
        kind, name = self._split(key)
        return self.objects / kind / name[:2] / name[2:]

    def object_file(self, key: str) -> str:
        """object_path as a string, built without pathlib (hot read path: a mount opens one
        per small file it reads; pathlib cost ~50 µs of ~170 per file, profiled)."""
        kind, name = self._split(key)
        return f"{self._objects_str}/{kind}/{name[:2]}/{name[2:]}"

    def block_dir(self, key: str) -> Path:
        kind, name = self._split(key)
        return self.blocks / kind / name[:2] / name[2:]

    def block_file(self, key: str, index: int) -> str:
        """The path of block `index` of `key`, as a string, with the per-key directory memoized
        (hot read path)."""
        d = self._block_dirs.get(key)
        if d is None:
            if len(self._block_dirs) > 4096:
                self._block_dirs.clear()
            d = self._block_dirs[key] = str(self.block_dir(key))
        return f"{d}/{index:08d}"

    @staticmethod
    def key_md5(key: str) -> str | None:
        """The MD5 that the bytes of `key` must have, when the key says (`md5/<hex>`)."""
        kind, _, name = key.partition("/")
        return name if kind == "md5" else None

    def touch(self, path: str) -> None:
        """Mark a cached file as just used (its LRU position): its seal's mtime. A file without
        a seal is left alone (touching it would change its ctime; it is sealed on its next
        check, or waits for its filler's seal)."""
        if not self._toucher.due(path):
            return
        name = self.seals.name_for(path)
        if name is not None:
            self._toucher.record(name)

    def flush_touches(self) -> None:
        """Write the uses recorded so far (eviction.Toucher batches them): before a prune."""
        self._toucher.flush()

    def intact(
        self,
        path: str,
        fd: int,
        st: os.stat_result | None = None,
        *,
        md5_hex: str | None = None,
        block: bool = False,
    ) -> bool:
        """Whether the open cached file `fd` is still what was verified (seals.py); a file that
        is not is discarded (never served again) and False returned."""
        why = self.seals.check(path, fd, st, md5_hex=md5_hex, block=block)
        if why is None:
            return True
        if not _names(path, fd):
            return False  # evicted or superseded meanwhile (with its seal): not a corruption
        self.discard(path, why, fd=fd)
        return False

    def drop_blocks(self, key: str) -> None:
        """Remove all blocks of `key` (superseded by the whole object, or suspect). The
        directory is renamed away first, so a concurrent reader sees every block with its seal
        or none at all, never a block whose seal was just removed."""
        src = self.block_dir(key)
        dead = self.tmp / f".drop-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        try:
            os.rename(src, dead)
        except FileNotFoundError:
            return
        except OSError:
            dead = src  # e.g. not a directory any more: remove in place
        shutil.rmtree(dead, ignore_errors=True)

    def seal(
        self,
        path: str,
        st: os.stat_result,
        *,
        md5: str | None = None,
        crc32: int | None = None,
        sha256: bytes | None = None,
    ) -> None:
        """Seal a file just renamed into place; if that fails it is removed (an unsealed file
        is never trusted) and the error raised (CacheError ENOSPC on a full disk). A block
        checked against its digest records that SHA-256 (`sha256`, seals.SHA256_MARK)."""
        if sha256 is not None:
            checksum: str | None = SHA256_MARK + base64.b64encode(sha256).decode("ascii")
        else:
            checksum = f"{crc32:08x}" if crc32 is not None else md5
        if checksum is None:
            raise ValueError("a seal records an MD5, a CRC-32 or a SHA-256")
        try:
            self.seals.write(path, st, checksum)
        except OSError as e:
            self._unlink(path, st)
            if e.errno in NO_SPACE:
                raise no_space_error(path, e) from e
            raise CacheError(f"cannot seal cache file {path}: {e}") from e

    def discard(self, path: Path | str, why: str, *, fd: int | None = None) -> None:
        """Remove a cached file that failed a check: it is never served again. With `fd` (the
        file that failed), a path that meanwhile names another file (a fresh fill by another
        process) is left alone. A file that merely has no seal (left by a version before seals,
        or by a filler that died between rename and seal) is not counted as corrupt."""
        if why.startswith(NO_SEAL):
            log.info("dropping unsealed cache file %s: it %s", path, why)
        else:
            log.warning("discarding corrupt cache file %s: it %s", path, why)
            self._stats.add(corrupt_discarded=1)
        self._unlink(str(path), os.fstat(fd) if fd is not None else None)

    def _unlink(self, path: str, st: os.stat_result | None) -> None:
        """Unlink a file, then its seals (a reader that finds no seal finds no file either)."""
        self.seals.forget(path)
        try:
            if st is not None:
                now = os.stat(path)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    return
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.seals.remove(path)


def _names(path: str, fd: int) -> bool:
    """Whether `path` still names the open file `fd`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
