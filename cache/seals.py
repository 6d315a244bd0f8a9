"""Seals: what a cached file looked like right after it was verified, so that a file changed
since is noticed on its next use without reading its bytes again.

WHY: a fill is verified once (MD5 and size for whole objects, length for blocks) and then served
for months, by every process. A byte flipped in the file afterwards (an editor, a stray `dd`, a
tool writing into the wrong path) used to be served forever. Re-hashing on every use would cost
about what the read costs; instead every fill leaves a *seal* beside the file, a file named by
the data file's fingerprint:

    <file>.seal-<dev>.<ino>.<size>.<mtime_ns>.<ctime_ns>     (hex)

The fingerprint is taken after the file was renamed into place (a rename changes ctime). Any
write to the file changes its mtime and ctime, and ctime cannot be set back from user space, so
a seal named by the file's current fingerprint means nobody wrote the inode since it was
verified; a replaced file has another inode. Checking is one `stat` of the expected name. The
seal lives OUTSIDE the file because setting an xattr changes ctime too. A seal of a whole
`md5/` object is empty (its key is its checksum) and costs an inode but no data block; a block's
seal holds the CRC-32 of its bytes (computed on fill from the bytes in memory), or the SHA-256
it was checked against at its fill (blockdigests.py; `SHA256_MARK`) and a
reference's the MD5 of what was fetched: what `artifactfs cache verify` and a suspicious file
are checked against. A file whose fingerprint moved is re-hashed, re-sealed if its bytes are
still right (e.g. after a chmod), discarded otherwise.

A seal's own mtime is the file's last use (eviction's LRU clock, see layout.CacheFiles.touch):
touching the data file itself would change its ctime and break its seal.

What a seal cannot see: bits that rot on the medium without a write (the inode is untouched);
`cache verify` re-hashes everything for that. Checks happen per open or handle, not per read:
the memo below makes a repeated check one dict lookup, and handles compare an `fstat` of their
held fds (see handles.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from artifactfs.cache.stats import StatsRecorder

log = logging.getLogger(__name__)

MARK = ".seal-"
HASH_CHUNK = 8 << 20

NO_SEAL = "has no seal"
"""How the reasons for dropping a file with nothing to check it against begin."""

GRACE_SECONDS = 2.0
"""A file renamed into place this recently may still be waiting for its seal (the filler writes
it right after the rename): a check waits up to `GRACE_WAIT` for it instead of distrusting it."""
GRACE_WAIT = 1.0

Fingerprint = tuple[int, int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)."""


def fingerprint(st: os.stat_result) -> Fingerprint:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def seal_name(path: str, fp: Fingerprint) -> str:
    """The seal of `path` for a file with fingerprint `fp`."""
    d, i, s, m, c = fp
    return f"{path}{MARK}{d:x}.{i:x}.{s:x}.{m:x}.{c:x}"


def split_seal(name: str) -> tuple[str, Fingerprint | None] | None:
    """`<file>.seal-<fp>` -> (`<file>`, fingerprint or None if garbled); None if not a seal."""
    base, mark, rest = name.partition(MARK)
    if not mark:
        return None
    try:
        d, i, s, m, c = (int(v, 16) for v in rest.split("."))
    except ValueError:
        return base, None
    return base, (d, i, s, m, c)


def is_seal(name: str) -> bool:
    return MARK in name


def crc32_of(data: bytes | memoryview) -> int:
    """The checksum a block's seal records (zlib's CRC-32: ~4 GB/s, GIL released)."""
    return zlib.crc32(data)


SHA256_MARK = "sha256:"
"""How a block's seal records the SHA-256 it was checked against (blockdigests.py) instead of
a CRC-32: base64 after the mark (51 characters, within what `find` reads). The fill hashed the
block for that check already, so the seal costs no second pass over its bytes."""


def hash_fd(fd: int, *, block: bool, like: str | None = None) -> str:
    """The checksum a seal of this kind records, of the whole open file: CRC-32 (8 hex digits)
    for a block (or its SHA-256 when the recorded checksum `like` is one), MD5 (hex) for a
    whole object."""
    pos = 0
    if block and like is not None and like.startswith(SHA256_MARK):
        sha = hashlib.sha256()
        while chunk := os.pread(fd, HASH_CHUNK, pos):
            sha.update(chunk)
            pos += len(chunk)
        return SHA256_MARK + base64.b64encode(sha.digest()).decode("ascii")
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


@dataclass(frozen=True)
class Seal:
    """A seal found beside a file: its name, the fingerprint it names, its checksum."""

    path: str
    fingerprint: Fingerprint | None
    checksum: str | None


class Seals:
    """Writes and checks the seals of one cache directory (thread-safe, many processes).

    `check` answers "is this open file still what was verified?" and is the one call every
    reader makes; `verify` re-hashes unconditionally (the scrub). Both re-seal a file whose
    bytes are right but whose fingerprint moved, and return a reason when it must be dropped.
    """

    def __init__(
        self,
        tmp_dir: Path,
        stats: StatsRecorder | None = None,
        *,
        keyed: Callable[[str], bool] = lambda path: False,
        max_memo: int = 65536,
    ) -> None:
        self.tmp_dir = tmp_dir
        self.max_memo = max_memo
        self._stats = stats
        self._keyed = keyed  # files whose path (key) is their checksum: empty seals
        # path -> the fingerprint found sealed (a cache of the seal's existence, never trusted
        # alone: always compared with a fresh fstat of the file being served)
        self._memo: dict[str, Fingerprint] = {}
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------
    def write(self, path: str, st: os.stat_result, checksum: str) -> None:
        """Seal `path` as it is now (`st`: an fstat of the file after its rename into place),
        recording `checksum` (MD5 hex of an object, CRC-32 hex of a block) unless the path
        says it already (an `md5/` object: an empty seal).

        OSError (e.g. ENOSPC) if the seal cannot be written; the caller must then not serve the
        file as verified."""
        fp = fingerprint(st)
        name = seal_name(path, fp)
        if self._keyed(path):
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        else:  # content: through a private file renamed into place (never read half-written)
            fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix=".seal-")
            try:
                try:
                    os.write(fd, checksum.encode())
                finally:
                    os.close(fd)
                os.chmod(tmp, 0o644)
                os.replace(tmp, name)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        self._remember(path, fp)

    def find(self, path: str) -> list[Seal]:
        """Every seal beside `path` (normally one; none for an unsealed file)."""
        parent, base = os.path.split(path)
        try:
            names = [n for n in os.listdir(parent) if n.startswith(base + MARK)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        seals = []
        for n in names:
            full = os.path.join(parent, n)
            split = split_seal(full)
            fp = split[1] if split is not None else None
            try:
                with open(full, "rb") as f:
                    checksum = f.read(64).decode("ascii", "replace").strip() or None
            except FileNotFoundError:
                continue
            seals.append(Seal(full, fp, checksum))
        return seals

    @staticmethod
    def _any_seal(path: str) -> bool:
        parent, base = os.path.split(path)
        try:
            return any(n.startswith(base + MARK) for n in os.listdir(parent))
        except (FileNotFoundError, NotADirectoryError):
            return False

    def name_for(self, path: str) -> str | None:
        """The seal that names `path`'s current fingerprint (memo, else one stat of `path`)."""
        fp = self._memo.get(path)
        if fp is None:
            try:
                fp = fingerprint(os.stat(path))
            except FileNotFoundError:
                return None
        return seal_name(path, fp)

    def remove(self, path: str, keep: str | None = None) -> None:
        """Remove the seals of `path` (all, or all but `keep`)."""
        self.forget(path)
        for seal in self.find(path):
            if seal.path != keep:
                try:
                    os.unlink(seal.path)
                except FileNotFoundError:
                    pass

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

        Cheap when nothing changed: a memo lookup, or one stat of the expected seal. A missing
        seal makes the file suspect: it is re-hashed against the expected MD5 (`md5_hex`, else
        the one its old seal recorded) or its old seal's CRC-32, and re-sealed if right."""
        st = os.fstat(fd) if st is None else st
        fp = fingerprint(st)
        if self._memo.get(path) == fp:
            return None
        if self._sealed(path, fp, st):
            self._remember(path, fp)
            return None
        return self._rehash(path, fd, st, md5_hex=md5_hex, block=block)

    def verify(
        self, path: str, fd: int, *, md5_hex: str | None = None, block: bool = False
    ) -> str | None:
        """Like `check`, but always re-hashes the bytes (the scrub, `artifactfs cache verify`)."""
        st = os.fstat(fd)
        self._sealed(path, fingerprint(st), st)  # lets a fresh fill finish sealing first
        return self._rehash(path, fd, st, md5_hex=md5_hex, block=block)

    def _sealed(self, path: str, fp: Fingerprint, st: os.stat_result) -> bool:
        name = seal_name(path, fp)
        if os.path.exists(name):
            return True
        if time.time() - st.st_ctime >= GRACE_SECONDS or self._any_seal(path):
            return False  # old, or sealed before and changed since: no seal is coming
        deadline = time.monotonic() + GRACE_WAIT  # just renamed: its filler is sealing it
        while time.monotonic() < deadline:
            time.sleep(0.01)
            if os.path.exists(name):
                return True
        return False

    def _rehash(
        self, path: str, fd: int, st: os.stat_result, *, md5_hex: str | None, block: bool
    ) -> str | None:
        fp = fingerprint(st)
        seals = self.find(path)
        recorded = next((s.checksum for s in seals if s.fingerprint == fp), None) or next(
            (s.checksum for s in seals if s.checksum), None
        )
        if block:
            if recorded is None:
                return f"{NO_SEAL} to check a block against"
            expected = recorded
        else:
            md5 = md5_hex or recorded
            if md5 is None:
                return f"{NO_SEAL} or digest to check it against"
            expected = md5
        if self._stats is not None:
            self._stats.add(rehashed=1)
        actual = hash_fd(fd, block=block, like=expected)
        if actual != expected:
            kind = ("SHA-256" if expected.startswith(SHA256_MARK) else "CRC-32") if block else "md5"
            return f"has {kind} {actual}, expected {expected} (changed after it was verified)"
        if fingerprint(os.fstat(fd)) != fp:
            return "changed while it was being checked"
        name = seal_name(path, fp)
        if not any(s.path == name for s in seals):
            try:
                self.write(path, st, expected)
            except OSError as e:  # unsealed but right: serve it now, check it again next time
                log.debug("cannot re-seal %s: %s", path, e)
                return None
        self.remove(path, keep=name)  # stale seals of earlier fingerprints
        self._remember(path, fp)
        return None
