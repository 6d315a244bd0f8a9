"""Filling one whole object in the foreground: fetched in one stream, or assembled from its
cached blocks, hashed on the way, and verified before it appears under `objects/`.

Apart from the blob cache because it is the one place where fetched bytes become a trusted
whole object: the MD5 (when known) and the size are checked after the file is written and
before the atomic rename, so a mismatch leaves nothing behind; and a bad block that may have
caused a mismatch is dropped with its siblings. (wholefill.py is the *background* fill that a
streaming reader joins; it gives the same guarantee.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from artifactfs.cache.blocks import atomic_write, block_count, block_span
from artifactfs.cache.filllock import FillLock
from artifactfs.cache.layout import CacheFiles
from artifactfs.cache.source import BlobSource, Progress, SourceFactory
from artifactfs.cache.stats import StatsRecorder
from artifactfs.errors import DigestMismatchError

HASH_CHUNK = 1 << 20


class HashingWriter:
    """A file wrapper that hashes and counts what goes through it (one pass, no re-read);
    `beat` is called per write (a fill lock's heartbeat: the fill is making progress)."""

    def __init__(
        self,
        f: BinaryIO,
        progress: Progress | None = None,
        beat: Callable[[], None] | None = None,
    ) -> None:
        self.f = f
        self.md5 = hashlib.md5()
        self.size = 0
        self.progress = progress
        self.beat = beat

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        n = self.f.write(data)
        if self.progress is not None:
            self.progress(len(data))
        if self.beat is not None:
            self.beat()
        return n if n is not None else len(data)

    def flush(self) -> None:
        self.f.flush()


def md5_of_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ObjectFiller:
    """Writes verified whole objects into one cache directory."""

    def __init__(
        self, files: CacheFiles, stats: StatsRecorder, *, block_size: int, block_threshold: int
    ) -> None:
        self.files = files
        self.block_size = block_size
        self.block_threshold = block_threshold
        self._stats = stats

    def fill(
        self,
        key: str,
        path: Path,
        size: int | None,
        source: SourceFactory,
        md5_hex: str | None,
        progress: Progress | None,
        lock: FillLock | None = None,
    ) -> None:
        """Write the object of `key` to `path`, reusing its cached blocks (only missing ranges
        are fetched; the blocks are dropped once the object is in place), and seal it.
        DigestMismatchError when the bytes do not match `md5_hex`/`size`; CacheError (ENOSPC)
        on a full disk. `lock` (the cross-process fill lock held) gets heartbeats and the
        temporary file's name."""
        holder: dict[str, HashingWriter] = {}
        block_dir = self.files.block_dir(key)
        reuse_blocks = size is not None and size >= self.block_threshold and block_dir.is_dir()

        def fill(f: BinaryIO) -> None:
            writer = holder["w"] = HashingWriter(
                f, progress, lock.beat if lock is not None else None
            )
            if reuse_blocks:
                assert size is not None
                self._assemble(key, size, source, writer)
            else:
                src = source()
                # HashingWriter has the one method copy_to uses (write), not all of BinaryIO
                src.copy_to(writer, None)  # type: ignore[arg-type]
                self._stats.add(bytes_fetched=writer.size)

        def check() -> None:
            w = holder["w"]
            if md5_hex is not None and w.md5.hexdigest() != md5_hex:
                raise DigestMismatchError(
                    f"fetched object {key} has md5 {w.md5.hexdigest()}, expected {md5_hex}"
                )
            if size is not None and w.size != size:
                raise DigestMismatchError(
                    f"fetched object {key} has {w.size} bytes, expected {size}"
                )

        try:
            st = atomic_write(
                self.files.tmp,
                path,
                fill,
                check,
                on_tmp=lock.record if lock is not None else None,
            )
        except DigestMismatchError:
            if reuse_blocks:  # a bad block may be the cause: do not keep serving it
                self.files.drop_blocks(key)
            raise
        self.files.seal(str(path), st, md5=holder["w"].md5.hexdigest())
        if reuse_blocks or block_dir.is_dir():
            self.files.drop_blocks(key)

    def _assemble(self, key: str, size: int, source: SourceFactory, writer: HashingWriter) -> None:
        """Write the object from its cached blocks, fetching only the missing ones."""
        src: BlobSource | None = None
        for index in range(block_count(size, self.block_size)):
            start, length = block_span(index, size, self.block_size)
            data = self._cached_block(self.files.block_file(key, index), length)
            if data is None:
                if src is None:
                    src = source()
                data = src.read_range(start, length)
                self._stats.add(bytes_fetched=len(data))
            writer.write(data)

    def _cached_block(self, path: str, length: int) -> bytes | None:
        """A cached block's bytes if it is there, of the right length and intact (its seal)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size != length or not self.files.intact(path, fd, st, block=True):
                return None  # fetched again (a wrong-sized block is left to the block reader)
            return os.pread(fd, length, 0)
        finally:
            os.close(fd)


def copy_file(path: Path, dest: BinaryIO, progress: Progress | None = None) -> int:
    """Copy a cached file into `dest`; returns the byte count."""
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            dest.write(chunk)
            n += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return n


def copy_verified(
    key: str,
    size: int | None,
    src: BlobSource,
    md5_hex: str | None,
    dest: BinaryIO,
    progress: Progress | None = None,
) -> int:
    """Stream `src` into `dest` (outside the cache), hashing on the way; DigestMismatchError
    if the bytes do not match `md5_hex`/`size`. Returns the byte count."""
    writer = HashingWriter(dest, progress)
    # HashingWriter has the one method copy_to uses (write), not all of BinaryIO
    src.copy_to(writer, None)  # type: ignore[arg-type]
    if md5_hex is not None and writer.md5.hexdigest() != md5_hex:
        raise DigestMismatchError(
            f"fetched object {key} has md5 {writer.md5.hexdigest()}, expected {md5_hex}"
        )
    if size is not None and writer.size != size:
        raise DigestMismatchError(f"fetched object {key} has {writer.size} bytes, expected {size}")
    return writer.size
