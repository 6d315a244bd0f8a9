"""Seals: what a cached file looked like right after it was verified, so that a file changed
since is noticed on its next use without reading its bytes again.

WHY: a fill is verified once (MD5 and size for whole objects, length for blocks) and then served
for months, by every process. A byte flipped in the file afterwards (an editor, a stray `dd`, a
tool writing into the wrong path) used to be served forever. Re-hashing on every use would cost
about what the read costs; instead every fill records a *seal* beside the file:

    <file>.seal    "afs-seal 1 <dev> <ino> <size> <mtime_ns> <ctime_ns> <md5|-> <crc32|->"

The fingerprint (device, inode, size, mtime, ctime) is taken after the file was renamed into
place (a rename changes ctime). Any write to the file changes its mtime and ctime, and ctime
cannot be set back from user space, so a fingerprint that still matches means nobody wrote the
inode; a replaced file has another inode. A seal lives OUTSIDE the file because setting an xattr
changes ctime too. The checksum (the object's MD5; a CRC-32 of a block, computed on fill from the
bytes in memory) is what `artifactfs cache verify` and a suspicious fingerprint are checked
against: a file whose fingerprint changed is re-hashed, re-sealed if its bytes are still right
(e.g. after a chmod), discarded otherwise.

A seal's own mtime is the file's last use (eviction's LRU clock, see layout.CacheFiles.touch):
touching the data file itself would change its ctime and break its seal.

What a seal cannot see: bits that rot on the medium without a write (the inode is untouched);
`cache verify` re-hashes everything for that. Checks happen per open or handle, not per read:
the memo below makes a repeated check one dict lookup, and handles compare an `fstat` of their
held fds (see handles.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from artifactfs.cache.stats import StatsRecorder

log = logging.getLogger(__name__)

SUFFIX = ".seal"
MAGIC = "afs-seal"
FORMAT = 1
HASH_CHUNK = 8 << 20

GRACE_SECONDS = 2.0
"""A file renamed into place this recently may still be waiting for its seal (the filler writes
it right after the rename): a check waits up to `GRACE_WAIT` for it instead of distrusting it."""
GRACE_WAIT = 1.0

NO_SEAL = "has no seal"
"""How the reasons for dropping a file with nothing to check it against begin."""

Fingerprint = tuple[int, int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)."""


def fingerprint(st: os.stat_result) -> Fingerprint:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def seal_path(path: str | os.PathLike[str]) -> str:
    return os.fspath(path) + SUFFIX


def is_seal(name: str) -> bool:
    return name.endswith(SUFFIX)


def crc32_of(data: bytes | memoryview) -> int:
    """The checksum a block's seal records (zlib's CRC-32: ~4 GB/s, GIL released)."""
    return zlib.crc32(data)


@dataclass(frozen=True)
class Seal:
    """A verified file's fingerprint and the checksum of its bytes."""

    fingerprint: Fingerprint
    md5: str | None = None
    """Whole objects: the hex MD5 of the bytes (the key's own for `md5/` keys)."""
    crc32: int | None = None
    """Blocks: the CRC-32 of the bytes (the manifest has no per-block hash)."""

    def encode(self) -> bytes:
        fp = " ".join(str(v) for v in self.fingerprint)
        crc = "-" if self.crc32 is None else f"{self.crc32:08x}"
        return f"{MAGIC} {FORMAT} {fp} {self.md5 or '-'} {crc}\n".encode()

    @classmethod
    def decode(cls, data: bytes) -> Seal | None:
        """The seal in `data`, or None if it is not one (garbled, truncated, other format)."""
        try:
            parts = data.decode("ascii").split()
            if len(parts) != 9 or parts[0] != MAGIC or parts[1] != str(FORMAT):
                return None
            d, i, s, m, c = (int(p) for p in parts[2:7])
            md5 = None if parts[7] == "-" else parts[7]
            crc = None if parts[8] == "-" else int(parts[8], 16)
        except (UnicodeDecodeError, ValueError):
            return None
        return cls((d, i, s, m, c), md5, crc)


def hash_fd(fd: int, *, block: bool) -> str:
    """The checksum a seal of this kind records, of the whole open file: CRC-32 (hex) for a
    block, MD5 (hex) for a whole object."""
    pos = 0
    if block:
        crc = 0
        while chunk := os.pread(fd, HASH_CHUNK, pos):
            crc = zlib.crc32(chunk, crc)
            pos += len(chunk)
        return f"{crc:08x}"
    h = hashlib.md5()
    while chunk := os.pread(fd, HASH_CHUNK, pos):
        h.update(chunk)
        pos += len(chunk)
    return h.hexdigest()


class Seals:
    """Writes and checks the seals of one cache directory (thread-safe, many processes).

    `check` answers "is this open file still what was verified?" and is the one call every
    reader makes; `verify` re-hashes unconditionally (the scrub). Both re-seal a file whose
    bytes are right but whose fingerprint moved, and return a reason when it must be dropped.
    """

    def __init__(
        self, tmp_dir: Path, stats: StatsRecorder | None = None, max_memo: int = 65536
    ) -> None:
        self.tmp_dir = tmp_dir
        self.max_memo = max_memo
        self._stats = stats
        # path -> the fingerprint found sealed (a cache of the seal file, never trusted alone:
        # it is always compared with a fresh fstat of the file being served)
        self._memo: dict[str, Fingerprint] = {}
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------
    def write(
        self, path: str, st: os.stat_result, *, md5: str | None = None, crc32: int | None = None
    ) -> None:
        """Seal `path` as it is now (`st`: an fstat of the file after its rename into place).

        OSError (e.g. ENOSPC) if the seal cannot be written; the caller must then not serve the
        file as verified."""
        data = Seal(fingerprint(st), md5, crc32).encode()
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix=".seal-")
        try:
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, seal_path(path))
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self._remember(path, fingerprint(st))

    def read(self, path: str) -> Seal | None:
        try:
            fd = os.open(path + SUFFIX, os.O_RDONLY | os.O_CLOEXEC)  # no io object: ~3x faster
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return Seal.decode(os.read(fd, 256))
        finally:
            os.close(fd)

    def forget(self, path: str) -> None:
        with self._lock:
            self._memo.pop(path, None)

    def _remember(self, path: str, fp: Fingerprint) -> None:
        with self._lock:
            if len(self._memo) >= self.max_memo:
                self._memo.clear()
            self._memo[path] = fp

    # -- checking ------------------------------------------------------------------------------
    def check(
        self,
        path: str,
        fd: int,
        st: os.stat_result | None = None,
        *,
        md5_hex: str | None = None,
        block: bool = False,
    ) -> str | None:
        """None if the open file `fd` (found at `path`) is intact, else why it must be dropped.

        Cheap when nothing changed: a memo lookup, or one read of the seal file. A missing or
        non-matching seal makes the file suspect: it is re-hashed against the expected MD5
        (`md5_hex`, else the seal's) or the seal's CRC-32, and re-sealed if right."""
        st = os.fstat(fd) if st is None else st
        fp = fingerprint(st)
        if self._memo.get(path) == fp:
            return None
        seal = self.read(path)
        if seal is None and time.time() - st.st_ctime < GRACE_SECONDS:
            seal = self._wait_for_seal(path)
        if (
            seal is not None
            and seal.fingerprint == fp
            and (block or md5_hex is None or seal.md5 in (None, md5_hex))
        ):
            self._remember(path, fp)
            return None
        return self._rehash(path, fd, st, seal, md5_hex=md5_hex, block=block)

    def verify(
        self, path: str, fd: int, *, md5_hex: str | None = None, block: bool = False
    ) -> str | None:
        """Like `check`, but always re-hashes the bytes (the scrub, `artifactfs cache verify`)."""
        st = os.fstat(fd)
        seal = self.read(path)
        if seal is None and time.time() - st.st_ctime < GRACE_SECONDS:
            seal = self._wait_for_seal(path)
        return self._rehash(path, fd, st, seal, md5_hex=md5_hex, block=block)

    def _wait_for_seal(self, path: str) -> Seal | None:
        deadline = time.monotonic() + GRACE_WAIT
        while time.monotonic() < deadline:
            time.sleep(0.01)
            seal = self.read(path)
            if seal is not None:
                return seal
        return None

    def _rehash(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        seal: Seal | None,
        *,
        md5_hex: str | None,
        block: bool,
    ) -> str | None:
        crc: int | None = None
        if block:
            if seal is None or seal.crc32 is None:
                return f"{NO_SEAL} to check a block against"
            crc = seal.crc32
            expected = f"{crc:08x}"
        else:
            md5 = md5_hex or (seal.md5 if seal is not None else None)
            if md5 is None:
                return f"{NO_SEAL} or digest to check it against"
            expected = md5
        if self._stats is not None:
            self._stats.add(rehashed=1)
        actual = hash_fd(fd, block=block)
        if actual != expected:
            kind = "CRC-32" if block else "md5"
            return f"has {kind} {actual}, expected {expected} (changed after it was verified)"
        after = os.fstat(fd)
        if fingerprint(after) != fingerprint(st):
            return "changed while it was being checked"
        if seal is None or seal.fingerprint != fingerprint(st):
            try:
                self.write(path, st, md5=None if block else expected, crc32=crc)
            except OSError as e:  # unsealed but right: serve it now, check it again next time
                log.debug("cannot re-seal %s: %s", path, e)
        else:
            self._remember(path, fingerprint(st))
        return None
