"""Range reads of the blob cache: what a reader of part of an object gets, and how it is checked.

WHY a module of its own: BlobCache (blobcache.py) wires the cache's parts together and answers
for whole objects; a range read is where the paths meet (a cached whole object, a verified
whole fill of a small or unanchored entry, checked blocks of a big one, and reads past a lost
or read-only cache, direct.py), and reads best on one page. `RangeReads` is the part of
BlobCache that does it; it uses only the attributes and methods declared below.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import artifactfs.cache.notices as notices
from artifactfs.cache.blockdigests import BlockDigests, ReadCheck
from artifactfs.cache.blocks import NO_SPACE, read_file_range
from artifactfs.cache.direct import cache_lost, read_direct
from artifactfs.cache.source import Progress, SourceFactory
from artifactfs.errors import CacheError

if TYPE_CHECKING:
    from artifactfs.cache.blockreads import BlockReader
    from artifactfs.cache.layout import CacheFiles
    from artifactfs.cache.stats import StatsRecorder

log = logging.getLogger("artifactfs.cache.blobcache")


class RangeReads:
    """Range reads for BlobCache (see the module docstring)."""

    root: Path
    block_size: int
    block_threshold: int
    unverified_ranges: bool
    _files: CacheFiles
    _stats: StatsRecorder
    _blocks: BlockReader
    _verified: dict[tuple[str, int], bool]

    if TYPE_CHECKING:

        def object_file(self, key: str) -> str: ...

        def open_intact(
            self, key: str, size: int | None, md5_hex: str | None
        ) -> tuple[int, os.stat_result, str | None] | None: ...

        def cached_path(
            self,
            key: str,
            size: int | None = None,
            md5_hex: str | None = None,
            *,
            verify: bool = False,
        ) -> Path | None: ...

        def ensure_file(
            self,
            key: str,
            size: int | None,
            source: SourceFactory,
            md5_hex: str | None = None,
            progress: Progress | None = None,
            *,
            verify: bool = False,
        ) -> Path: ...

    # -- range reads -----------------------------------------------------------------------
    def read(
        self,
        key: str,
        size: int | None,
        offset: int,
        length: int,
        source: SourceFactory,
        md5_hex: str | None = None,
        *,
        verify: bool = False,
        digests: BlockDigests | None = None,
    ) -> bytes:
        """Bytes [offset, offset+length) of the object, from the cache, filling it on a miss.

        A cached whole object serves the read. Otherwise entries of known size at or above
        `block_threshold` with block `digests` are read block by block (only the overlapped
        blocks are fetched and checked, with read-ahead when access is sequential); smaller
        ones, and big ones with an MD5 but no digests, are fetched whole and verified first.
        When the cache cannot store (disk full) the bytes come straight from the source, so the
        reader still gets them (unverified beyond length; counted in stats.direct_reads).
        """
        if length <= 0 or offset < 0 or (size is not None and offset >= size):
            return b""
        try:
            return self._read_cached(key, size, offset, length, source, md5_hex, verify, digests)
        except OSError as e:
            if not cache_lost(e):
                raise
            self._lost(e)
        try:  # again, also when another thread just made the directories
            return self._read_cached(key, size, offset, length, source, md5_hex, verify, digests)
        except OSError as e:
            if not cache_lost(e):
                raise
            self._lost(e, again=True)
        check = self.read_check(key, md5_hex, digests)
        data = read_direct(key, size, offset, length, source, md5_hex, self.block_threshold, check)
        self._stats.add(direct_reads=1, bytes_fetched=len(data), bytes_served=len(data))
        return data

    def _lost(self, e: OSError, again: bool = False) -> None:
        """The cache's own storage failed (direct.py): make its directories again when they
        were deleted (first try), or say, once a minute, that reads go past it."""
        if not again:
            if self._files.restore():
                notices.warn(
                    log, f"made:{self.root}", "cache %s was deleted; made again", self.root
                )
            return
        notices.warn(
            log,
            f"lost:{self.root}:{e.errno}",
            "cache %s unusable (%s); reading directly from the source until it is usable again",
            self.root,
            e.strerror or e,
        )

    def _read_cached(
        self,
        key: str,
        size: int | None,
        offset: int,
        length: int,
        source: SourceFactory,
        md5_hex: str | None,
        verify: bool,
        digests: BlockDigests | None,
    ) -> bytes:
        data = self._read_whole(key, size, md5_hex, offset, length, verify)
        if data is not None:
            self._stats.add(hits=1, bytes_served=len(data))
            return data
        check = self.read_check(key, md5_hex, digests)
        if size is None or size < self.block_threshold or check.whole:
            if size is not None and size >= self.block_threshold:
                self._stats.add(whole_first=1)
            try:
                path = self.ensure_file(key, size, source, md5_hex, verify=verify)
                data = read_file_range(path, offset, length)
            except CacheError as e:
                if e.errno not in NO_SPACE or check.whole:  # (a big whole: too big to hold)
                    raise
                notices.warn(log, f"full:{self.root}", "%s; reading directly from the source", e)
                data = source().read_range(offset, length)
                self._stats.add(direct_reads=1, bytes_fetched=len(data))
            except FileNotFoundError:  # evicted between fill and open (another process)
                data = source().read_range(offset, length)
                self._stats.add(bytes_fetched=len(data))
            self._stats.add(bytes_served=len(data))
            return data
        return self._blocks.read(key, size, offset, length, source, check.blocks)

    def read_check(self, key: str, md5_hex: str | None, digests: BlockDigests | None) -> ReadCheck:
        """How range reads of a big object of `key` are checked (blockdigests.ReadCheck)."""
        md5 = md5_hex or self._files.key_md5(key)
        return ReadCheck.for_entry(digests, md5, self.block_size, self.unverified_ranges)

    def _read_whole(
        self,
        key: str,
        size: int | None,
        md5_hex: str | None,
        offset: int,
        length: int,
        verify: bool,
    ) -> bytes | None:
        found = self.open_intact(key, size, md5_hex)
        if found is None:
            return None  # not cached, or discarded: fetched again by the caller
        fd, st, md5 = found
        path = self.object_file(key)
        try:
            unverified = verify and md5 is not None and (path, st.st_ino) not in self._verified
            # cached_path hashes (once per inode) and discards a corrupt file
            if unverified and self.cached_path(key, size, md5_hex, verify=True) is None:
                return None
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        self._files.touch(path)
        return data
