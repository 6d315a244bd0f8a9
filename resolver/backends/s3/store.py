"""The S3 Store: the Store interface as S3 requests, with create/swap as conditional PUTs.

`create` is a PUT with `If-None-Match: *` and `swap` a PUT with `If-Match: <etag>`; 412
PreconditionFailed and 409 ConditionalRequestConflict mean "race lost" (errors.py maps them),
except when botocore retried a PUT whose first response was lost and the retry met our own
write (`already_ours`). Before the first write the server is probed (probe.py); bulk bytes go
through transfer.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

from artifactfs.cache.s3client import client_for_config
from artifactfs.errors import (
    BackendError,
    DigestMismatchError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from artifactfs.resolver.backends.base import ObjectInfo, Progress, Store, read_body
from artifactfs.resolver.backends.s3.errors import CONFLICT, cause_code, translated
from artifactfs.resolver.backends.s3.probe import ConditionalWriteProbe, probe
from artifactfs.resolver.backends.s3.transfer import (
    MAX_CONCURRENCY,
    MULTIPART_CHUNKSIZE,
    MULTIPART_THRESHOLD,
    Transfers,
    VerifyingReader,
    body_into,
    pwrite_all,
)
from artifactfs.settings import Config, load_config, request_budget

log = logging.getLogger(__name__)

CREATE_CONFLICT_RETRIES = 5
"""A 409 ConditionalRequestConflict on a create means "try again", not "someone else won"."""


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


def _age(resp: dict[str, Any], modified: Any) -> float | None:
    """Seconds since `modified` (a datetime), by the server's clock (the response's Date)."""
    from email.utils import parsedate_to_datetime

    if modified is None:
        return None
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        now = time.time()
    return max(0.0, now - modified.timestamp())


_Uploads = list[tuple[str, str]]


class S3Store(Store):
    """A Store over `s3://bucket/prefix`. Etags are returned without their quotes."""

    concurrency = 32  # network latency bound: keep the client's connection pool busy
    read_parallelism = 8
    """A single ranged GET runs at ~0.5 GB/s (loopback SeaweedFS); 4-8 at once reach ~1.2."""

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
        request_deadline: float | None = None,
        bulk_client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.bulk_client = bulk_client or client
        """For blob bytes: a read timeout of the whole deadline (s3client.make_client)."""
        self.endpoint_url = endpoint_url or getattr(client.meta, "endpoint_url", None)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.where = f"{self.url} at {self.endpoint_url or 'AWS S3'}"
        """The bucket and endpoint, for error messages."""
        self.request_deadline = request_deadline or request_budget(30.0, 5).total
        """Wall-clock seconds a request may take, its body included (config.request_budget)."""
        self.transfers = Transfers(
            self.bulk_client,
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )
        self.transfer_config = self.transfers.config
        self._probe = ConditionalWriteProbe((self.endpoint_url, self.bucket, self.prefix))

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> S3Store:
        """The store for `s3://bucket/prefix` with the endpoint/profile/timeouts of `config`."""
        if config is None:
            config = load_config()
        bucket, prefix = parse_s3_url(url)
        try:
            client = client_for_config(config)
            bulk_client = client_for_config(config, bulk=True)
        except Exception as e:  # botocore ProfileNotFound, bad region...: say which setting
            raise BackendError(f"cannot set up an S3 client for {url}: {e}") from e
        return cls(
            bucket,
            prefix,
            client=client,
            endpoint_url=config.s3_endpoint_url,
            request_deadline=request_budget(config.timeout, config.retries).total,
            bulk_client=bulk_client,
        )

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

    def _errors(self, op: str, key: str = "") -> AbstractContextManager[None]:
        """Our named errors for whatever botocore/s3transfer raise inside (errors.py)."""
        return translated(op, key, bucket=self.bucket, url=self.url, where=self.where)

    def _body(self, resp: dict[str, Any], started: float, key: str) -> bytes:
        """A GetObject body, read within the request's deadline (base.read_body says why)."""
        body = resp["Body"]
        raw = getattr(body, "_raw_stream", None)
        if raw is None or resp.get("ContentEncoding"):
            return bytes(body.read())
        return read_body(raw, self.request_deadline, f"S3 get {key!r} on {self.where}")

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, str]:
        started = time.monotonic()
        with self._errors("get", key):
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = self._body(resp, started, key)
        return data, _strip_etag(resp.get("ETag"))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        started = time.monotonic()
        try:
            with self._errors("get_range", key):
                resp = self.client.get_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Range=f"bytes={start}-{start + length - 1}",
                )
                data = self._body(resp, started, key)
        except BackendError as e:
            code, status = cause_code(e)
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
        """Write bytes [start, start+length) of `key` at the same offsets of file `fd`, streamed
        without a bytes object (transfer.body_into says why); falls back to `get_range` when
        the response is not a plain 206 body."""
        with self._errors("get_range", key):
            resp = self.bulk_client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{start + length - 1}"
            )
            done = body_into(
                resp, fd, start, length, self.request_deadline, f"S3 get {key!r} on {self.where}"
            )
            if done is None:
                data = self.get_range(key, start, length)
                return pwrite_all(fd, memoryview(data), start)
        return done

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors("head", key):
                resp = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFoundError:
            return None
        return ObjectInfo(
            key,
            int(resp["ContentLength"]),
            _strip_etag(resp.get("ETag")),
            _age(resp, resp.get("LastModified")),
        )

    def download_to(self, key: str, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """Parallel ranged GETs through s3transfer (sequential writes if `fileobj` can't seek)."""
        with self._errors("download", key):
            return self.transfers.download(self.bucket, self._key(key), fileobj, progress)

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

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        """One ListObjectsV2 pass: sizes, etags and ages (each page's Date as "now")."""
        full = self._list_prefix(prefix)
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    rel = self._rel(obj["Key"])
                    if rel and not rel.endswith("/"):
                        age = _age(page, obj.get("LastModified"))
                        yield ObjectInfo(rel, int(obj["Size"]), _strip_etag(obj.get("ETag")), age)

    def _stale_multipart(self, older_than: float) -> _Uploads:
        """(key, upload id) of multipart uploads under our prefix started `older_than` ago."""
        out: _Uploads = []
        with self._errors("list uploads", self.prefix):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._list_prefix("")
            )
            for page in pages:
                for up in page.get("Uploads", ()):
                    age = _age(page, up.get("Initiated"))
                    if age is not None and age > older_than:
                        out.append((up["Key"], up["UploadId"]))
        return out

    def stale_uploads(self, older_than: float) -> Iterator[str]:
        for key, upload_id in self._stale_multipart(older_than):
            yield f"multipart upload {upload_id} of {key}"

    def abort_stale_uploads(self, older_than: float) -> int:
        done = 0
        for key, upload_id in self._stale_multipart(older_than):
            with self._errors("abort upload", key):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            done += 1
        return done

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
        file that changed since it was hashed is never stored (see transfer.VerifyingReader).

        Small files with `if_absent` take one conditional PUT (If-None-Match: *): a blob the
        bucket already holds costs one rejected request instead of a HEAD and a PUT."""
        self.check_writable()
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise BackendError(f"cannot read {path} to upload it: {e}") from e
        threshold = self.transfers.multipart_threshold
        if if_absent and size < threshold:
            return self._put_small_if_absent(key, path, progress, md5_hex)
        if if_absent and self.head(key) is not None:
            raise PreconditionFailedError(f"{key!r} already exists")
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, after the transfer
        except OSError as e:
            raise BackendError(f"cannot read {path} to upload it: {e}") from e
        reader = VerifyingReader(f, md5_hex, path)
        try:
            with self._errors("upload", key):
                self.transfers.upload(reader, self.bucket, self._key(key), progress)
        finally:
            f.close()
        if not reader.at_eof:  # s3transfer changed how it reads: never trust an unchecked upload
            log.error("upload of %s ended before end-of-file; removing %s", path, key)
            self.delete(key)
            raise BackendError(f"upload of {path} to {key!r} was incomplete")
        if reader.size < threshold:
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
        etag = self.create(key, data, bulk=True)
        if progress:
            progress(len(data))
        return etag

    def conditional_put(self, key: str, data: bytes, **condition: str) -> str:
        """One PUT with the given condition headers (IfNoneMatch=..., IfMatch=...); a refused
        condition raises PreconditionFailedError. No probe first: the probe uses this."""
        return self._conditional_put(self.client, key, data, condition)

    def _conditional_put(
        self, client: Any, key: str, data: bytes, condition: dict[str, str]
    ) -> str:
        with self._errors("conditional put", key):
            resp = client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
        return _strip_etag(resp.get("ETag"))

    def already_ours(self, key: str, data: bytes, error: Exception) -> str | None:
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

    def create(self, key: str, data: bytes, *, bulk: bool = False) -> str:
        self.check_writable()
        for attempt in range(CREATE_CONFLICT_RETRIES):
            try:
                # blob bytes (`bulk`) go through the client whose timeouts let a slow link finish
                client = self.bulk_client if bulk else self.client
                return self._conditional_put(client, key, data, {"IfNoneMatch": "*"})
            except PreconditionFailedError as e:
                code, _ = cause_code(e)
                if code in CONFLICT and attempt + 1 < CREATE_CONFLICT_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                etag = self.already_ours(key, data, e)
                if etag is not None:
                    return etag
                raise PreconditionFailedError(f"{key!r} already exists in {self.url}") from e
        raise AssertionError("unreachable")

    def swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        if expected_etag is None:
            return self.create(key, data)
        self.check_writable()
        try:
            return self.conditional_put(key, data, IfMatch=_quote_etag(expected_etag))
        except PreconditionFailedError as e:
            etag = self.already_ours(key, data, e)
            if etag is not None:
                return etag
            raise PreconditionFailedError(f"{key!r} changed during compare-and-swap") from e

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def close(self) -> None:
        self.transfers.close()

    # -- the conditional-write probe (probe.py) ------------------------------------------------
    def check_writable(self) -> None:
        """Probe once that the server enforces If-None-Match/If-Match; refuse to write if not."""
        self._probe.ensure(self)

    def probe_conditional_writes(self) -> None:
        """Run the probe now (even if it ran before); ConditionalWritesUnsupportedError if the
        server fails it."""
        probe(self)
