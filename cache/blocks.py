"""Fixed-size blocks of big objects: the arithmetic, and atomic file writes shared by all fills.

A big entry is cached as `blocks/<kind>/<2>/<rest>/<index>`, one file per block, so a range
read fetches only the blocks it overlaps. What a block fill can verify: its exact length (every
block but the last is `block_size` bytes, the last is what remains of the object's `size`). It
cannot verify content against the manifest, which holds one MD5 for the whole object and no
per-block hashes; but the fill records a CRC-32 of the bytes it fetched in the block's seal
(seals.py), so a block changed after its fill is noticed and fetched again. Content is verified
when the whole object is assembled (`BlobCache.ensure_file`), which reuses the cached blocks and
hashes everything.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from artifactfs.errors import CacheError

log = logging.getLogger(__name__)

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def block_span(index: int, size: int, block_size: int) -> tuple[int, int]:
    """(start, length) of block `index` of an object of `size` bytes."""
    start = index * block_size
    return start, max(0, min(block_size, size - start))


def block_range(offset: int, length: int, size: int, block_size: int) -> range:
    """Indices of the blocks that bytes [offset, offset+length) overlap (clipped to `size`)."""
    end = min(offset + length, size)
    if end <= offset:
        return range(0)
    return range(offset // block_size, (end - 1) // block_size + 1)


def block_count(size: int, block_size: int) -> int:
    return (size + block_size - 1) // block_size


def no_space_error(path: Path | str, e: OSError) -> CacheError:
    """The CacheError a full disk turns into: errno ENOSPC, and a message a user can act on."""
    return CacheError(
        errno.ENOSPC,
        f"cache disk is full while writing under {path} ({os.strerror(e.errno or errno.ENOSPC)}); "
        "free space, lower the cache size (cache_size) or run `artifactfs cache prune`",
    )


def atomic_write(
    tmp_dir: Path,
    dest: Path,
    fill: Callable[[BinaryIO], object],
    check: Callable[[], None] | None = None,
    *,
    on_tmp: Callable[[str], None] | None = None,
) -> os.stat_result:
    """Write a file through a private temporary file renamed into place.

    `fill` writes the content (its result is ignored); `check` (after the file is closed) may
    raise to reject it; `on_tmp` is told the temporary file's name first (a fill lock records
    it). On any failure the temporary file is removed, so no partial file is ever visible under
    `dest`; a full disk becomes CacheError with errno ENOSPC. Returns an fstat of the file
    taken after the rename (what its seal must record: a rename changes ctime).
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".fill-")
    except OSError as e:
        if e.errno in NO_SPACE:
            raise no_space_error(tmp_dir, e) from e
        raise CacheError(f"cannot create a temporary file in {tmp_dir}: {e}") from e
    if on_tmp is not None:
        on_tmp(tmp)
    try:
        try:
            reader = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)  # names the inode after the rename
        except BaseException:
            os.close(fd)
            raise
        try:
            try:
                with os.fdopen(fd, "wb") as f:
                    fill(f)
            except OSError as e:
                if e.errno in NO_SPACE:
                    raise no_space_error(dest, e) from e
                raise
            if check is not None:
                check()
            for attempt in range(3):
                # A concurrent prune may remove an emptied block directory between the mkdir
                # and the rename, or even inside mkdir (pathlib then sees it exist, then not be
                # a directory, and raises FileExistsError); recreate it and try again.
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, dest)
                    break
                except (FileNotFoundError, FileExistsError):
                    if attempt == 2:
                        raise
            return os.fstat(reader)
        finally:
            os.close(reader)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_file_range(path: Path | str, offset: int, length: int) -> bytes:
    """pread from a cached file; FileNotFoundError if it was evicted meanwhile."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)
