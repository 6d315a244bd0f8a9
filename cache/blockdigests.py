"""Per-block digests of a big object: what lets a ranged read be checked before it is served.

WHY: the manifest anchors one MD5 per entry, which can only be checked once the whole object
has been read. A mount or fsspec reader of a big entry reads it by range (blocks.py), so
without more, a blob replaced in the bucket by other bytes of the same size was served as
wrong bytes. A commit therefore records the SHA-256 of every `block_size` block of each big
entry (resolver/blockrecord.py stores them, the version record names them by digest) and every
block fetched for a range read, or as a part of a background whole fill, is checked against
them before any byte of it is served. SHA-256 (hardware-accelerated on current x86 and ARM,
GIL released) because a digest that anyone who can write the bucket could forge a collision
for would anchor nothing.

Which entries are checked how (`ReadCheck`): blocks when the entry has digests; whole (the
object fetched and its MD5 checked before the first byte is served) when it has an MD5 but no
digests (logged by W&B or an older artifactfs); not at all when nothing anchors its bytes (a
reference whose digest is not a checksum of them), or when the cache was told so
(`unverified_ranges`, the documented opt-out).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ALGORITHM = "sha256"
DIGEST_SIZE = 32
DIGEST_BLOCK = 4 << 20
"""The block size digests are recorded with (the cache's default block size; a cache whose
block size is a multiple of it checks several digests per block)."""
HASH_CHUNK = 8 << 20
CHECKED_MARK = ".checked-v1"
"""An empty directory in a cache's `blocks/` once the blocks there were all checked against
digests (a directory: eviction, `cache verify` and prune look at files only)."""


def _sha256(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class BlockDigests:
    """The SHA-256 of each `block_size` block of one object of `size` bytes (the last block
    holds what remains)."""

    size: int
    block_size: int
    digests: bytes
    """The raw digests, DIGEST_SIZE bytes each, in block order."""

    def __post_init__(self) -> None:
        n = (self.size + self.block_size - 1) // self.block_size if self.block_size > 0 else -1
        if self.block_size <= 0 or len(self.digests) != n * DIGEST_SIZE:
            raise ValueError(
                f"{len(self.digests) // DIGEST_SIZE} block digests do not fit an object of "
                f"{self.size} bytes in blocks of {self.block_size}"
            )

    def fits(self, block_size: int) -> bool:
        """Whether blocks of `block_size` (the cache's) can be checked with these digests."""
        return block_size > 0 and block_size % self.block_size == 0

    def digest_of(self, start: int, length: int) -> bytes | None:
        """The recorded digest of bytes [start, start+length) when they are exactly one digest
        block (what a checked cache block's seal can record), else None."""
        index, off = divmod(start, self.block_size)
        if off or length != min(self.block_size, self.size - start) or length <= 0:
            return None
        digest = self.digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]
        return digest if len(digest) == DIGEST_SIZE else None

    def bad_block(self, start: int, data: bytes | memoryview) -> int | None:
        """Check `data`, the object's bytes from `start` (a multiple of `block_size`) to the
        end of a digest block or of the object; the index of the first digest block that does
        not match (or does not fit), None when all match."""
        view = memoryview(data)
        bs = self.block_size
        first = start // bs
        if start % bs:
            return first
        pos = 0
        while pos < len(view):
            index = first + pos // bs
            want = self.digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]
            piece = view[pos : pos + bs]
            full = min(bs, self.size - index * bs)
            if len(want) != DIGEST_SIZE or len(piece) != full or _sha256(piece) != want:
                return index
            pos += bs
        return None

    def bad_block_in_file(self, fd: int, start: int, length: int) -> int | None:
        """`bad_block` for bytes [start, start+length) of an open file (read back in chunks)."""
        step = max(self.block_size, (HASH_CHUNK // self.block_size) * self.block_size)
        pos = start
        while pos < start + length:
            n = min(step, start + length - pos)
            bad = self.bad_block(pos, os.pread(fd, n, pos))
            if bad is not None:
                return bad
            pos += n
        return None


def digests_of_file(path: str | os.PathLike[str], block_size: int = DIGEST_BLOCK) -> bytes:
    """The raw block digests of a local file (what a commit records)."""
    out = bytearray()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(block_size)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            while n < block_size:  # short reads before EOF
                more = f.readinto(memoryview(buf)[n:])
                if not more:
                    break
                n += more
            out += _sha256(memoryview(buf)[:n])
    return bytes(out)


@dataclass(frozen=True)
class ReadCheck:
    """How the bytes of one entry are checked before a range of them is served: against its
    block digests (`blocks`), whole (`whole`: the object is fetched and verified first), or
    not at all (neither)."""

    blocks: BlockDigests | None = None
    whole: bool = False

    @staticmethod
    def for_entry(
        blocks: BlockDigests | None, md5_hex: str | None, block_size: int, unverified: bool
    ) -> ReadCheck:
        if blocks is not None and blocks.fits(block_size):
            return ReadCheck(blocks=blocks)
        return ReadCheck(whole=md5_hex is not None and not unverified)


UNCHECKED = ReadCheck()


def drop_unchecked_blocks(blocks_dir: Path, tmp_dir: Path) -> None:
    """Blocks cached by an artifactfs before block digests were only length-checked when they
    were fetched: drop them once, the first time this cache is opened by a version that checks
    (the directory is renamed away at once and removed in the background)."""
    mark = blocks_dir / CHECKED_MARK
    if mark.is_dir():
        return
    try:
        old = [p for p in blocks_dir.iterdir() if p.name != CHECKED_MARK]
        dead = tmp_dir / f".unchecked-blocks-{os.getpid()}-{threading.get_ident()}"
        if old:
            dead.mkdir()
            for p in old:
                os.rename(p, dead / p.name)
            log.info("dropped blocks cached before block digests were checked (%s)", blocks_dir)
            threading.Thread(
                target=shutil.rmtree, args=(dead,), kwargs={"ignore_errors": True}, daemon=True
            ).start()
        mark.mkdir(exist_ok=True)
    except OSError as e:  # a read-only or vanished cache: reads cope with that elsewhere
        log.debug("cannot mark %s as checked: %s", blocks_dir, e)
