"""The shared, content-addressed local cache (DESIGN §6).

One cache per user, shared by every mount and process. Objects are named by key (`md5/<hex>` for
stored content, `ref/<sha256>` for references), filled through a temporary file and renamed into
place only after their digest checks out, so a reader never sees a partial or corrupt object.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from artifactfs.cache.source import Progress, SourceFactory
from artifactfs.errors import CacheError, DigestMismatchError

log = logging.getLogger(__name__)


def content_key(md5_hex: str) -> str:
    """Cache key of stored content with this MD5."""
    return f"md5/{md5_hex}"


def reference_key(ref: str, digest: str, version_id: str | None = None) -> str:
    """Cache key of a reference: the URL pinned by the digest (and version) it was logged with."""
    h = hashlib.sha256(f"{ref}\n{digest}\n{version_id or ''}".encode()).hexdigest()
    return f"ref/{h}"


class _HashingWriter:
    def __init__(self, f) -> None:  # type: ignore[no-untyped-def]
        self.f = f
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        return self.f.write(data)


class BlobCache:
    """A directory of immutable objects named by key, with atomic, verified fills."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = 20 << 30) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot use cache directory {self.root}: {e}") from e

    def path_for(self, key: str) -> Path:
        kind, name = key.split("/", 1)
        return self._objects / kind / name[:2] / name[2:]

    def cached_path(self, key: str) -> Path | None:
        """The path of the whole object if it is cached (and marks it recently used)."""
        path = self.path_for(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def ensure_file(
        self,
        key: str,
        size: int | None,
        source: SourceFactory,
        md5_hex: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Return the path of the whole object, fetching it on a miss.

        The fill is verified against `md5_hex` (when known) and `size` (when known) before it
        becomes visible; a mismatch raises DigestMismatchError and leaves nothing behind.
        """
        hit = self.cached_path(key)
        if hit is not None:
            return hit
        path = self.path_for(key)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                writer = _HashingWriter(f)
                source().copy_to(writer, progress)  # type: ignore[arg-type]
            if md5_hex is not None and writer.md5.hexdigest() != md5_hex:
                raise DigestMismatchError(
                    f"fetched object {key} has md5 {writer.md5.hexdigest()}, expected {md5_hex}"
                )
            if size is not None and writer.size != size:
                raise DigestMismatchError(
                    f"fetched object {key} has {writer.size} bytes, expected {size}"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path

    def read(
        self,
        key: str,
        size: int | None,
        offset: int,
        length: int,
        source: SourceFactory,
        md5_hex: str | None = None,
    ) -> bytes:
        """Bytes [offset, offset+length) of the object, from the cache, filling it on a miss."""
        path = self.ensure_file(key, size, source, md5_hex)
        with open(path, "rb") as f:
            return os.pread(f.fileno(), length, offset)
