"""The registry backend seam: a flat key -> bytes store with the few atomic operations we need.

Every backend (local directory, S3-compatible bucket, read-only HTTP) implements this one small
interface, in the spirit of fsspec: the registry logic above it never knows which one it talks to.
The only coordination between writers is `create` (create-only write) and `swap` (compare-and-swap
on an etag); there is no lock service (DESIGN §4).

Keys are `/`-separated, never start with `/` or `.`, and never contain `//`. Listings are
unordered: callers sort what they need.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from artifactfs.errors import (
    BackendError,
    DigestMismatchError,
    PreconditionFailedError,
    ReadOnlyBackendError,
)
from artifactfs.liveness import ProgressWindow

Progress = Callable[[int], None]
"""Called with a number of bytes just transferred (for progress bars)."""


BODY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    age: float | None = None
    """Seconds since the object was last written, by the server's clock where there is one
    (S3: the response's Date minus Last-Modified), None when the store cannot tell. Garbage
    collection and commits reason with it (docs/SEMANTICS.md)."""


def read_body(raw: Any, window: float, what: str) -> bytes:
    """The whole body of a streamed urllib3 response, one socket read at a time, failing when a
    `window`-second stretch brings too few bytes (liveness.ProgressWindow).

    WHY: a read timeout bounds each wait for a byte, not a body that trickles in a byte at a
    time (a stalled or hostile server); reading with `read1` returns after every receive, so
    progress is checked between them. A body that keeps arriving is never cut, however long it
    takes on a slow link (issue 20). urllib3 still checks Content-Length (a short body raises)."""
    read1 = getattr(raw, "read1", None)
    if read1 is None:
        return bytes(raw.read())
    parts: list[bytes] = []
    progress = ProgressWindow(window, what)
    try:
        while data := read1(BODY_CHUNK):
            parts.append(data)
            progress.add(len(data))
    except BackendError:
        raw.close()
        raise
    release = getattr(raw, "release_conn", None)
    if release is not None:
        release()
    return b"".join(parts)


class Store(ABC):
    """A key-value object store holding a registry (DESIGN §4)."""

    url: str = ""
    writable: bool = True
    concurrency: int = 8
    """How many transfers the registry runs at once against this store."""
    read_parallelism: int = 1
    """How many ranged reads of one object are worth running at once when it is read
    sequentially (the cache's background whole fill; 1: never, block reads are as fast)."""

    # -- reads -------------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> tuple[bytes, str]:
        """Return (data, etag). Raises ObjectNotFoundError if absent, BackendError on failure."""

    @abstractmethod
    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return up to `length` bytes from `start` (fewer only at the end of the object)."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size and etag of `key`, or None if it does not exist."""

    def download_to(self, key: str, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """Stream the whole object into `fileobj`; return the byte count.

        Backends override this with their efficient path (parallel ranged GETs, sendfile...).
        """
        data, _ = self.get(key)
        fileobj.write(data)
        if progress:
            progress(len(data))
        return len(data)

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Every key that starts with `prefix`, in no particular order."""

    @abstractmethod
    def list_children(self, prefix: str) -> Iterator[str]:
        """Names one level below `prefix` (which ends with `/`): files and "directories" alike,
        without the prefix and without trailing slashes, in no particular order."""

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix` with its size and age (for garbage collection).
        Backends override this with one listing pass; the default HEADs each key."""
        for key in self.list(prefix):
            info = self.head(key)
            if info is not None:
                yield info

    def stale_uploads(self, older_than: float) -> Iterator[str]:
        """Unfinished uploads (temporary files, multipart uploads) older than `older_than`
        seconds, as descriptions; `abort_stale_uploads` removes them. None by default."""
        return iter(())

    def abort_stale_uploads(self, older_than: float) -> int:
        """Remove what `stale_uploads` lists; return how many. Nothing by default."""
        return 0

    # -- writes ------------------------------------------------------------------------------
    @abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Unconditional write; returns the new etag. Used for content-addressed objects."""

    def put_file(
        self,
        key: str,
        path: str,
        progress: Progress | None = None,
        md5_hex: str | None = None,
        *,
        if_absent: bool = False,
    ) -> str:
        """Upload a local file. Backends override this with multipart/parallel uploads.

        With `md5_hex`, the backend must never leave content under `key` whose MD5 differs
        (the file may have changed since it was hashed): it raises DigestMismatchError instead.
        With `if_absent`, an existing key is left alone and PreconditionFailedError raised: for
        content-addressed blobs, so each backend can skip what it holds as cheaply as it can
        (a conditional PUT on S3 instead of a HEAD and a PUT).
        """
        if if_absent and self.head(key) is not None:
            raise PreconditionFailedError(f"{key!r} already exists")
        with open(path, "rb") as f:
            data = f.read()
        if md5_hex is not None and hashlib.md5(data).hexdigest() != md5_hex:
            raise DigestMismatchError(f"{path} changed after it was added (expected md5 {md5_hex})")
        etag = self.put(key, data)
        if progress:
            progress(len(data))
        return etag

    @abstractmethod
    def create(self, key: str, data: bytes) -> str:
        """Create-only write; returns the etag. Raises PreconditionFailedError if `key` exists."""

    @abstractmethod
    def swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        """Compare-and-swap: write only if the current etag is `expected_etag` (None: only if
        absent). Returns the new etag; raises PreconditionFailedError when the race is lost."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; absent keys are not an error."""

    def sync(self) -> None:  # noqa: B027 - optional hook
        """Make every write so far durable. The registry calls it once before a version
        record (the commit point), so backends may skip per-object flushes of content."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""

    def check_writable(self) -> None:
        """Raise a clear error before the first write if this store cannot be written safely.

        S3 backends probe that conditional writes are really enforced here.
        """
        if not self.writable:
            raise ReadOnlyBackendError(f"registry {self.url} is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
