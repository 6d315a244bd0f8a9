"""Reads past the cache, for when the cache's own directory is gone or read-only.

WHY: the cache is an optimisation. `rm -rf` of it under a live mount, or a cache directory
that became read-only, used to break reads of big files until remount (ENOENT, EROFS; issue
20). BlobCache.read recognises such a failure (`cache_lost`), makes the directories again
when it can, and otherwise serves the read from the source through here, every read trying
the cache first again, so the cache is used as soon as it is usable again (no remount).

A read past the cache is checked as a cached one would be (blockdigests.ReadCheck): a small
entry is fetched whole and its MD5 checked; a big one with block digests is fetched in whole
digest blocks, each checked before a byte of it is served; a big one that only its MD5
anchors cannot be checked by range without somewhere to put the whole object, so it is EIO
(with the warning BlobCache logs) rather than unverified bytes.
"""

from __future__ import annotations

import errno
import io
import logging

from artifactfs.cache.blockdigests import ReadCheck
from artifactfs.cache.objectfill import copy_verified
from artifactfs.cache.source import SourceFactory
from artifactfs.errors import BackendError, CacheError, DigestMismatchError

log = logging.getLogger(__name__)

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
    check: ReadCheck,
) -> bytes:
    """Bytes [offset, offset+length) from the source, checked as `check` says (module doc)."""
    if size is None or size < block_threshold:
        buf = io.BytesIO()
        copy_verified(key, size, source(), md5_hex, buf, None)
        return buf.getvalue()[offset : offset + length]
    blocks = check.blocks
    if blocks is None:
        if check.whole:
            raise CacheError(
                errno.EIO,
                f"{key}: a range of a big entry without block digests cannot be verified "
                "while the cache is unusable",
            )
        return source().read_range(offset, length)  # nothing anchors these bytes
    end = min(offset + length, size)
    first = (offset // blocks.block_size) * blocks.block_size
    last = min(-(-end // blocks.block_size) * blocks.block_size, size)
    data = source().read_range(first, last - first)
    bad = None if len(data) == last - first else first // blocks.block_size
    if bad is None:
        bad = blocks.bad_block(first, data)
    if bad is not None:
        msg = (
            f"block {bad} of {key} read past the cache does not match the digest recorded at "
            "commit: the stored object was changed; not served"
        )
        log.error("%s", msg)
        raise DigestMismatchError(msg)
    return data[offset - first : end - first]
