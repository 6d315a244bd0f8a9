"""Moving bulk bytes to and from S3: s3transfer for whole objects, raw reads for ranges.

Apart from the store because this is machinery, not Store semantics: boto3's transfer manager
(multipart and parallel uploads, parallel ranged GETs for downloads) with one manager and its
thread pools per store; the reader that verifies an upload's MD5 before s3transfer can send its
last byte; and the zero-copy path that streams a ranged GET's body into a file through one
reused buffer per thread. The store decides what to transfer and what its errors mean.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, BinaryIO

from artifactfs.errors import DigestMismatchError
from artifactfs.liveness import ProgressWindow, moved
from artifactfs.resolver.backends.base import Progress

MiB = 1 << 20
MULTIPART_THRESHOLD = 8 * MiB
MULTIPART_CHUNKSIZE = 8 * MiB
MAX_CONCURRENCY = 10
BUFFER_SIZE = 1 * MiB

_buffers = threading.local()


def _thread_buffer() -> memoryview:
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = memoryview(bytearray(BUFFER_SIZE))
    return buf


def pwrite_all(fd: int, data: memoryview, pos: int) -> int:
    """Write all of `data` at `pos` of `fd` (pwrite may write less); return its length."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], pos + done)
    return done


def body_into(
    resp: dict[str, Any], fd: int, start: int, length: int, window: float, what: str
) -> int | None:
    """Stream the body of a ranged GetObject response (bytes [start, start+length)) into `fd` at
    the same offsets, from the socket through this thread's buffer; return how many were
    written. None (the body closed, nothing written) when the response is not a plain 206 body
    of exactly `length` bytes: the caller then reads the range the ordinary way.

    WHY: reading the range as one bytes object makes urllib3 copy it through its own buffers;
    with 8 reads at once that allocation and copying cost more CPU than the transfer on a
    2-core machine. Here the bytes go from http.client's readinto straight to the file.
    Every `window` seconds must bring some bytes (liveness.ProgressWindow, as base.read_body):
    a body that trickles fails with BackendError, one that keeps moving is never cut.
    """
    body = resp["Body"]
    raw = getattr(body, "_raw_stream", None)
    fp = getattr(raw, "_fp", None)
    status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
    plain = status == 206 and not resp.get("ContentEncoding")
    if raw is None or fp is None or not plain or int(resp.get("ContentLength", -1)) != length:
        body.close()
        return None
    buf = _thread_buffer()
    done = 0
    progress = ProgressWindow(window, what)
    try:
        while done < length:
            n = fp.readinto(buf[: min(len(buf), length - done)])
            if not n:
                break
            pwrite_all(fd, buf[:n], start + done)
            done += n
            progress.add(n)
    finally:
        if done == length:
            raw.release_conn()
        else:
            body.close()
    return done


class VerifyingReader:
    """A non-seekable reader that hashes what s3transfer reads and refuses to hand over the end
    of the file if the MD5 differs from the expected one.

    Why: the file may change between the moment its digest entered the manifest and the upload.
    Raising from the read that reaches end-of-file happens before s3transfer can send the
    PutObject body's last byte or CompleteMultipartUpload, so the transfer fails and s3transfer
    aborts the multipart upload: nothing is ever visible under the key. Being non-seekable makes
    s3transfer read strictly sequentially (each byte exactly once, in order)."""

    def __init__(self, f: BinaryIO, expected_md5: str | None, path: str) -> None:
        self._f = f
        self._expected = expected_md5
        self._path = path
        self._md5 = hashlib.md5()
        self.size = 0
        self.at_eof = False

    def seekable(self) -> bool:
        return False

    def read(self, amount: int | None = -1) -> bytes:
        data = self._f.read(amount if amount is not None else -1)
        self._md5.update(data)
        self.size += len(data)
        if amount is None or amount < 0 or len(data) < amount:
            self.at_eof = True
            self.check()
        return data

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    def check(self) -> None:
        if self._expected is not None and self.md5_hex != self._expected:
            raise DigestMismatchError(
                f"{self._path} changed after it was added (expected md5 {self._expected}, "
                f"read {self.md5_hex}); nothing was uploaded"
            )


class Transfers:
    """One store's s3transfer manager (created on first use, its thread pools reused by every
    transfer), with progress callbacks adapted to our `Progress`."""

    def __init__(
        self,
        client: Any,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNKSIZE,
        max_concurrency: int = MAX_CONCURRENCY,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client = client
        self.config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            # One attempt per part: botocore retries each GET within the request deadline; a
            # body that stalls fails the download instead of costing five more deadlines
            # (s3transfer's default), and the cache's next miss tries again.
            num_download_attempts=1,
            use_threads=True,
            preferred_transfer_client="classic",
        )
        self._manager: Any = None
        self._lock = threading.Lock()

    @property
    def multipart_threshold(self) -> int:
        return int(self.config.multipart_threshold)

    def _transfer(self) -> Any:
        with self._lock:
            if self._manager is None:
                from boto3.s3.transfer import create_transfer_manager

                self._manager = create_transfer_manager(self.client, self.config)
            return self._manager

    @staticmethod
    def _subscribers(progress: Progress | None) -> list[Any]:
        """Progress callbacks: the caller's, and always the liveness clock's (a transfer
        that moves bytes keeps the mount's deadline waiting, liveness.py)."""
        from boto3.s3.transfer import ProgressCallbackInvoker

        subscribers = [ProgressCallbackInvoker(moved)]
        if progress is not None:
            subscribers.append(ProgressCallbackInvoker(progress))
        return subscribers

    def download(
        self, bucket: str, key: str, fileobj: BinaryIO, progress: Progress | None = None
    ) -> int:
        """The whole object by parallel ranged GETs (sequential writes if `fileobj` can't seek);
        returns the byte count."""
        counted = [0]
        lock = threading.Lock()

        def count(n: int) -> None:
            with lock:
                counted[0] += n
            if progress:
                progress(n)

        future = self._transfer().download(
            bucket, key, fileobj, subscribers=self._subscribers(count)
        )
        future.result()
        return counted[0]

    def upload(
        self, reader: VerifyingReader, bucket: str, key: str, progress: Progress | None = None
    ) -> None:
        """Upload what `reader` yields (multipart and parallel above the threshold)."""
        future = self._transfer().upload(
            reader, bucket, key, subscribers=self._subscribers(progress)
        )
        future.result()

    def close(self) -> None:
        with self._lock:
            if self._manager is not None:
                self._manager.shutdown()
                self._manager = None
