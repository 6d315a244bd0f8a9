"""The registry in an S3-compatible bucket (AWS S3, MinIO, Ceph, SeaweedFS, GCS interop), via boto3.

Location: `s3://bucket/prefix`; the endpoint, profile and region come from the Config (or boto3's
own environment variables), credentials from boto3's standard chain and are never logged.

Coordination rests only on S3's conditional writes (DESIGN §4): `create` is a PUT with
`If-None-Match: *` and `swap` a PUT with `If-Match: <etag>`; 412 PreconditionFailed and
409 ConditionalRequestConflict mean "race lost". Some S3-compatible servers accept those headers
and silently ignore them, which would let two writers take the same version number. So before the
first write `check_writable` probes the server (create a probe key twice, swap it with a wrong
etag) and refuses to write if either succeeds. The result is cached per store (and per process
for a given endpoint/bucket/prefix, so short-lived Resolvers do not probe again).

Bulk bytes go through boto3's transfer manager (s3transfer): multipart and parallel uploads,
parallel ranged GETs for downloads. Retries with backoff on throttling/5xx are botocore's
(adaptive mode, configured in cache/s3client.py); connect/read timeouts become BackendError so
the mount can answer EIO instead of hanging.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from artifactfs.errors import (
    BackendError,
    ConditionalWritesUnsupportedError,
    DigestMismatchError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from artifactfs.resolver.backends.base import ObjectInfo, Progress, Store

if TYPE_CHECKING:
    from artifactfs.config import Config

log = logging.getLogger(__name__)

MiB = 1 << 20
MULTIPART_THRESHOLD = 8 * MiB
MULTIPART_CHUNKSIZE = 8 * MiB
MAX_CONCURRENCY = 10
CREATE_CONFLICT_RETRIES = 5
"""A 409 ConditionalRequestConflict on a create means "try again", not "someone else won"."""

PROBE_PREFIX = "probe-conditional-writes-"
"""Top level, not in a "directory": servers that keep empty directories (SeaweedFS) keep none."""
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412"}
_CONFLICT = {"ConditionalRequestConflict", "409"}
_UNSUPPORTED = {"NotImplemented", "501"}

_probed_ok: set[tuple[str | None, str, str]] = set()
_probed_lock = threading.Lock()


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix") (no leading/trailing slashes)."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}; use s3://bucket/prefix")
    if "//" in prefix:
        raise ValueError(f"{url!r}: '//' in a key prefix is not portable across S3 servers")
    return bucket, prefix


def _strip_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def _quote_etag(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


_buffers = threading.local()
BUFFER_SIZE = 1 * MiB


def _thread_buffer() -> memoryview:
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = memoryview(bytearray(BUFFER_SIZE))
    return buf


def _pwrite_all(fd: int, data: memoryview, pos: int) -> int:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], pos + done)
    return done


class _VerifyingReader:
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


class S3Store(Store):
    """A Store over `s3://bucket/prefix`. Etags are returned without their quotes."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any,
        endpoint_url: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNKSIZE,
        max_concurrency: int = MAX_CONCURRENCY,
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.endpoint_url = endpoint_url or getattr(client.meta, "endpoint_url", None)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )
        self._manager: Any = None
        self._manager_lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._probed = False

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> S3Store:
        """The store for `s3://bucket/prefix` with the endpoint/profile/timeouts of `config`."""
        from artifactfs.cache.s3client import client_for_config

        if config is None:
            from artifactfs.config import load_config

            config = load_config()
        bucket, prefix = parse_s3_url(url)
        try:
            client = client_for_config(config)
        except Exception as e:  # botocore ProfileNotFound, bad region...: say which setting
            raise BackendError(f"cannot set up an S3 client for {url}: {e}") from e
        return cls(bucket, prefix, client=client, endpoint_url=config.s3_endpoint_url)

    # -- helpers -------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or "//" in key or "\x00" in key:
            raise ValueError(f"invalid store key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_prefix(self, prefix: str) -> str:
        if prefix.startswith("/") or "//" in prefix:
            raise ValueError(f"invalid store prefix {prefix!r}")
        return f"{self.prefix}/{prefix}" if self.prefix else prefix

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _where(self) -> str:
        return f"{self.url} at {self.endpoint_url or 'AWS S3'}"

    @staticmethod
    def _code(e: Exception) -> tuple[str, int]:
        resp = getattr(e, "response", None) or {}
        code = str(resp.get("Error", {}).get("Code", ""))
        status = int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code, status

    @contextmanager
    def _errors(self, op: str, key: str = "") -> Iterator[None]:
        """Turn botocore/s3transfer failures into our named errors with a useful message."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as e:
            code, status = self._code(e)
            if code in _NOT_FOUND or status == 404:
                if code == "NoSuchBucket":
                    raise BackendError(
                        f"bucket {self.bucket!r} does not exist ({self._where()})"
                    ) from e
                raise ObjectNotFoundError(f"no such key {key!r} in {self.url}") from e
            if code in _PRECONDITION or code in _CONFLICT or status in (409, 412):
                raise PreconditionFailedError(f"{key!r}: {op} lost a race ({code})") from e
            if status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId"):
                raise BackendError(
                    f"access denied to {self._where()} for {op} {key!r} ({code}); check the "
                    "credentials boto3 finds (environment, profile, instance role)"
                ) from e
            raise BackendError(f"S3 {op} {key!r} failed on {self._where()}: {code} {e}") from e
        except NoCredentialsError as e:
            raise BackendError(
                f"no S3 credentials for {self._where()}: set AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, an AWS profile (s3_profile), or an instance role"
            ) from e
        except BotoCoreError as e:
            raise BackendError(f"S3 {op} {key!r} failed: {self._where()} unreachable: {e}") from e
        except (DigestMismatchError, BackendError):
            raise
        except Exception as e:
            # s3transfer's own failures (RetriesExceededError after repeated read errors...).
            if type(e).__module__.startswith(("s3transfer", "boto3", "urllib3")):
                raise BackendError(f"S3 {op} {key!r} failed on {self._where()}: {e}") from e
            raise

    def _transfer(self) -> Any:
        """One transfer manager per store: its thread pools are reused by every transfer."""
        with self._manager_lock:
            if self._manager is None:
                from boto3.s3.transfer import create_transfer_manager

                self._manager = create_transfer_manager(self.client, self.transfer_config)
            return self._manager

    @staticmethod
    def _subscribers(progress: Progress | None) -> list[Any]:
        if progress is None:
            return []
        from boto3.s3.transfer import ProgressCallbackInvoker

        return [ProgressCallbackInvoker(progress)]

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, str]:
        with self._errors("get", key):
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = resp["Body"].read()
        return data, _strip_etag(resp.get("ETag"))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            with self._errors("get_range", key):
                resp = self.client.get_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Range=f"bytes={start}-{start + length - 1}",
                )
                data = resp["Body"].read()
        except BackendError as e:
            code, status = self._code(e.__cause__) if e.__cause__ else ("", 0)
            if code == "InvalidRange" or status == 416:
                return b""  # start at or past the end: nothing there, like a short read
            raise
        # A server that ignores Range sends the whole object (200): cut out what was asked.
        if (
            resp.get("ResponseMetadata", {}).get("HTTPStatusCode") == 200
            and "ContentRange" not in resp
        ):
            data = data[start : start + length]
        return data

    def get_range_into(self, key: str, start: int, length: int, fd: int) -> int:
        """Write bytes [start, start+length) of `key` at the same offsets of file `fd`.

        WHY: `get_range` allocates the whole range as one bytes object and urllib3 copies it
        through its own buffers; with 8 of them at once that allocation and copying cost more
        CPU than the transfer on a 2-core machine. Here the body goes from the socket into one
        reused buffer per thread (http.client's readinto) and straight to the file. Falls back
        to `get_range` when the response is not a plain 206 body.
        """
        with self._errors("get_range", key):
            resp = self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{start + length - 1}"
            )
            body = resp["Body"]
            raw = getattr(body, "_raw_stream", None)
            fp = getattr(raw, "_fp", None)
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            plain = status == 206 and not resp.get("ContentEncoding") and fp is not None
            if not plain or int(resp.get("ContentLength", -1)) != length:
                body.close()
                data = self.get_range(key, start, length)
                return _pwrite_all(fd, memoryview(data), start)
            buf = _thread_buffer()
            done = 0
            try:
                while done < length:
                    n = fp.readinto(buf[: min(len(buf), length - done)])
                    if not n:
                        break
                    _pwrite_all(fd, buf[:n], start + done)
                    done += n
            finally:
                if done == length:
                    raw.release_conn()
                else:
                    body.close()
        return done

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors("head", key):
                resp = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFoundError:
            return None
        return ObjectInfo(key, int(resp["ContentLength"]), _strip_etag(resp.get("ETag")))

    def download_to(self, key: str, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """Parallel ranged GETs through s3transfer (sequential writes if `fileobj` can't seek)."""
        counted = [0]
        lock = threading.Lock()

        def count(n: int) -> None:
            with lock:
                counted[0] += n
            if progress:
                progress(n)

        with self._errors("download", key):
            future = self._transfer().download(
                self.bucket, self._key(key), fileobj, subscribers=self._subscribers(count)
            )
            future.result()
        return counted[0]

    def list(self, prefix: str) -> Iterator[str]:
        full = self._list_prefix(prefix)
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    rel = self._rel(obj["Key"])
                    if rel and not rel.endswith("/"):
                        yield rel

    def list_children(self, prefix: str) -> Iterator[str]:
        full = self._list_prefix(prefix)
        seen: set[str] = set()
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, Delimiter="/"
            )
            for page in pages:
                names = [p["Prefix"] for p in page.get("CommonPrefixes", ())]
                names += [o["Key"] for o in page.get("Contents", ())]
                for name in names:
                    child = name[len(full) :].rstrip("/")
                    if child and "/" not in child and child not in seen:
                        seen.add(child)
                        yield child

    # -- writes --------------------------------------------------------------------------------
    def put(self, key: str, data: bytes) -> str:
        self.check_writable()
        with self._errors("put", key):
            resp = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return _strip_etag(resp.get("ETag"))

    concurrency = 32  # network latency bound: keep the client's connection pool busy
    read_parallelism = 8
    """A single ranged GET runs at ~0.5 GB/s (loopback SeaweedFS); 4-8 at once reach ~1.2."""

    def put_file(
        self,
        key: str,
        path: str,
        progress: Progress | None = None,
        md5_hex: str | None = None,
        *,
        if_absent: bool = False,
    ) -> str:
        """Multipart, parallel upload via s3transfer; with `md5_hex`, verified on the fly so a
        file that changed since it was hashed is never stored (see _VerifyingReader).

        Small files with `if_absent` take one conditional PUT (If-None-Match: *): a blob the
        bucket already holds costs one rejected request instead of a HEAD and a PUT."""
        self.check_writable()
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise BackendError(f"cannot read {path} to upload it: {e}") from e
        if if_absent and size < self.transfer_config.multipart_threshold:
            return self._put_small_if_absent(key, path, progress, md5_hex)
        if if_absent and self.head(key) is not None:
            raise PreconditionFailedError(f"{key!r} already exists")
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, after the transfer
        except OSError as e:
            raise BackendError(f"cannot read {path} to upload it: {e}") from e
        reader = _VerifyingReader(f, md5_hex, path)
        try:
            with self._errors("upload", key):
                future = self._transfer().upload(
                    reader, self.bucket, self._key(key), subscribers=self._subscribers(progress)
                )
                future.result()
        finally:
            f.close()
        if not reader.at_eof:  # s3transfer changed how it reads: never trust an unchecked upload
            log.error("upload of %s ended before end-of-file; removing %s", path, key)
            self.delete(key)
            raise BackendError(f"upload of {path} to {key!r} was incomplete")
        if reader.size < self.transfer_config.multipart_threshold:
            return reader.md5_hex  # a single PUT: S3's ETag is the content MD5
        info = self.head(key)
        return info.etag if info else ""

    def _put_small_if_absent(
        self, key: str, path: str, progress: Progress | None, md5_hex: str | None
    ) -> str:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BackendError(f"cannot read {path} to upload it: {e}") from e
        digest = hashlib.md5(data)
        if md5_hex is not None and digest.hexdigest() != md5_hex:
            raise DigestMismatchError(
                f"{path} changed after it was added (expected md5 {md5_hex}, read "
                f"{digest.hexdigest()}); nothing was uploaded"
            )
        etag = self.create(key, data)
        if progress:
            progress(len(data))
        return etag

    def _conditional_put(self, key: str, data: bytes, **condition: str) -> str:
        with self._errors("conditional put", key):
            resp = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **condition
            )
        return _strip_etag(resp.get("ETag"))

    def _already_ours(self, key: str, data: bytes, error: Exception) -> str | None:
        """After a lost race: did our own earlier attempt win? That happens when botocore retried
        a conditional PUT whose first response was lost (timeout, reset): the retry then finds
        our own write. Only then (RetryAttempts > 0) do we read the key back; identical bytes
        mean the write was ours, and we return its etag."""
        resp = getattr(error.__cause__, "response", None) or {}
        if not resp.get("ResponseMetadata", {}).get("RetryAttempts"):
            return None
        try:
            current, etag = self.get(key)
        except ObjectNotFoundError:
            return None
        return etag if current == data else None

    def create(self, key: str, data: bytes) -> str:
        self.check_writable()
        for attempt in range(CREATE_CONFLICT_RETRIES):
            try:
                return self._conditional_put(key, data, IfNoneMatch="*")
            except PreconditionFailedError as e:
                code, _ = self._code(e.__cause__) if e.__cause__ else ("", 0)
                if code in _CONFLICT and attempt + 1 < CREATE_CONFLICT_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                etag = self._already_ours(key, data, e)
                if etag is not None:
                    return etag
                raise PreconditionFailedError(f"{key!r} already exists in {self.url}") from e
        raise AssertionError("unreachable")

    def swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        if expected_etag is None:
            return self.create(key, data)
        self.check_writable()
        try:
            return self._conditional_put(key, data, IfMatch=_quote_etag(expected_etag))
        except PreconditionFailedError as e:
            etag = self._already_ours(key, data, e)
            if etag is not None:
                return etag
            raise PreconditionFailedError(f"{key!r} changed during compare-and-swap") from e

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def close(self) -> None:
        with self._manager_lock:
            if self._manager is not None:
                self._manager.shutdown()
                self._manager = None

    # -- the conditional-write probe -----------------------------------------------------------
    def check_writable(self) -> None:
        """Probe once that the server enforces If-None-Match/If-Match; refuse to write if not."""
        if self._probed:
            return
        cache_key = (self.endpoint_url, self.bucket, self.prefix)
        with _probed_lock:
            if cache_key in _probed_ok:
                self._probed = True
                return
        with self._probe_lock:
            if not self._probed:
                self.probe_conditional_writes()
                self._probed = True
                with _probed_lock:
                    _probed_ok.add(cache_key)

    def probe_conditional_writes(self) -> None:
        """Create a probe key twice and swap it with a wrong etag: both must be refused.

        Three small requests plus a delete, once per store (and process); the probe key is a
        top-level key outside the registry's layout, and is always removed."""
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        failures: list[str] = []
        started = time.perf_counter()
        try:
            try:
                self._conditional_put(key, b"probe 1", IfNoneMatch="*")
            except PreconditionFailedError as e:
                if self._already_ours(key, b"probe 1", e) is None:
                    failures.append(f"a create-only write of a new key was refused ({e})")
            except BackendError as e:
                code, status = self._code(e.__cause__) if e.__cause__ else ("", 0)
                if code in _UNSUPPORTED or status == 501:
                    failures.append("the server does not implement If-None-Match on PUT")
                else:
                    raise
            if not failures:
                self._expect_refusal(
                    key, failures, "If-None-Match: * on an existing key", IfNoneMatch="*"
                )
                self._expect_refusal(
                    key,
                    failures,
                    "If-Match with a wrong etag",
                    IfMatch='"00000000000000000000000000000000"',
                )
        finally:
            try:
                self.delete(key)
            except BackendError as e:
                log.warning("could not remove probe key %s: %s", key, e)
        log.debug(
            "conditional-write probe of %s took %.3fs", self.url, time.perf_counter() - started
        )
        if failures:
            raise ConditionalWritesUnsupportedError(
                f"refusing to write to {self._where()}: the server does not enforce conditional "
                f"writes ({'; '.join(failures)}). Without them two writers can take the same "
                "version number or lose an alias update. Use a server that supports "
                "If-None-Match/If-Match on PutObject (AWS S3, MinIO, recent Ceph, SeaweedFS)."
            )

    def _expect_refusal(self, key: str, failures: list[str], what: str, **condition: str) -> None:
        try:
            self._conditional_put(key, b"probe 2", **condition)
        except PreconditionFailedError:
            return
        except BackendError as e:
            code, status = self._code(e.__cause__) if e.__cause__ else ("", 0)
            if code in _UNSUPPORTED or status == 501:
                failures.append(f"{what}: not implemented by the server")
                return
            raise
        failures.append(f"{what} was accepted")
