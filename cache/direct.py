"""Reads past the cache, for when the cache's own directory is gone or read-only.

WHY: the cache is an optimisation. `rm -rf` of it under a live mount, or a cache directory
that became read-only, used to break reads of big files until remount (ENOENT, EROFS; issue
20). BlobCache.read recognises such a failure (`cache_lost`), makes the directories again
when it can, and otherwise serves the read from the source through here, every read trying
the cache first again, so the cache is used as soon as it is usable again (no remount).
"""

from __future__ import annotations

import errno
import io

from artifactfs.cache.objectfill import copy_verified
from artifactfs.cache.source import SourceFactory
from artifactfs.errors import BackendError, DigestMismatchError

LOST = (errno.ENOENT, errno.ENOTDIR, errno.EROFS, errno.EACCES, errno.EPERM, errno.ESTALE)
"""What the cache's own files fail with when its directory is gone or read-only."""


def cache_lost(e: OSError) -> bool:
    """True for a failure of the cache's own storage (deleted, read-only), not of the source
    or of the bytes: the read then goes past the cache instead of failing."""
    if isinstance(e, (BackendError, DigestMismatchError)):
        return False
    return e.errno in LOST


def read_direct(
    key: str,
    size: int | None,
    offset: int,
    length: int,
    source: SourceFactory,
    md5_hex: str | None,
    block_threshold: int,
) -> bytes:
    """Bytes [offset, offset+length) from the source: a small entry whole and verified (md5
    and size, as a fill would be), then cut; a big one by range, as a block is read."""
    if size is None or size < block_threshold:
        buf = io.BytesIO()
        copy_verified(key, size, source(), md5_hex, buf, None)
        return buf.getvalue()[offset : offset + length]
    return source().read_range(offset, length)
