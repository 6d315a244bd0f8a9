"""s3:// and gs:// references through boto3 (gs via the GCS XML interoperability endpoint).

Add time: HEAD for a single key, else a paginated listing of the prefix (ListObjectVersions on
versioned buckets, which yields every object's VersionId in one pass instead of a HEAD per key;
ListObjectsV2 otherwise). Like W&B, the digest is the ETag (for gs: the base64 MD5, what W&B's
GCS handler records), `extra` holds {"etag", "versionID"}, and checksum=False records the URI as
digest without contacting the store.

Read time: ranged GET pinned by VersionId when one was recorded, so an overwritten object is
still read as it was logged. Without a version the GET carries If-Match and the response ETag is
compared as well (some S3-compatible servers ignore If-Match on GET): an overwritten object is
an error, never silently different bytes.
"""

from __future__ import annotations

from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlparse

from artifactfs.cache import s3client
from artifactfs.cache.references.base import (
    DEFAULT_MAX_OBJECTS,
    ReferenceHandler,
    ReferenceObject,
    b64_to_hex,
    check_max_objects,
    hex_to_b64,
    is_hex_md5,
)
from artifactfs.cache.source import BlobSource, Progress
from artifactfs.errors import BackendError, DigestMismatchError, ObjectNotFoundError

CHUNK = 1 << 20
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion", "NoSuchBucket"}


def parse_uri(uri: str) -> tuple[str, str, str | None]:
    """`s3://bucket/key?versionId=v` -> (bucket, key, version)."""
    parsed = urlparse(uri)
    query = dict(parse_qsl(parsed.query))
    return parsed.netloc, parsed.path.lstrip("/"), query.get("versionId")


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


def _error_code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _translate(e: Exception, what: str) -> Exception:
    """botocore errors -> our named errors (the message never contains credentials)."""
    code = _error_code(e)
    if code in _NOT_FOUND:
        return ObjectNotFoundError(f"{what}: not found ({code})")
    if code in ("412", "PreconditionFailed"):
        return DigestMismatchError(f"{what} changed since it was logged (ETag no longer matches)")
    return BackendError(f"{what}: {code or type(e).__name__}: {e}")


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


class S3Source:
    """One object version, read by range or whole."""

    def __init__(
        self, client: Any, uri: str, bucket: str, key: str, version: str | None, etag: str | None
    ) -> None:
        self.client = client
        self.uri = uri
        self.bucket = bucket
        self.key = key
        self.version = version
        self.etag = etag

    def _get(self, **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key, **extra}
        if self.version:
            args["VersionId"] = self.version
        elif self.etag:
            args["IfMatch"] = f'"{self.etag}"'
        try:
            resp = self.client.get_object(**args)
        except _client_errors() as e:
            where = f"{self.uri} (version {self.version})" if self.version else self.uri
            raise _translate(e, where) from e
        got = _etag(resp.get("ETag"))
        if self.etag and got and got != self.etag:
            resp["Body"].close()
            raise DigestMismatchError(
                f"{self.uri} changed since it was logged (ETag {got}, expected {self.etag}); "
                "enable bucket versioning to keep logged objects readable"
            )
        return resp

    def read_range(self, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        resp = self._get(Range=f"bytes={start}-{start + length - 1}")
        try:
            return resp["Body"].read()
        except _client_errors() as e:
            raise _translate(e, self.uri) from e
        finally:
            resp["Body"].close()

    def copy_to(self, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        resp = self._get()
        total = 0
        try:
            for chunk in resp["Body"].iter_chunks(CHUNK):
                fileobj.write(chunk)
                total += len(chunk)
                if progress:
                    progress(len(chunk))
        except _client_errors() as e:
            raise _translate(e, self.uri) from e
        finally:
            resp["Body"].close()
        return total


class S3Handler(ReferenceHandler):
    schemes = ("s3",)
    gcs = False

    def client(self, config: Any) -> Any:
        if config is None:
            from artifactfs.settings import load_config

            config = load_config()
        return s3client.client_for_config(config, gcs=self.gcs)

    def _digest(self, etag: str) -> str:
        return etag

    def _entry(self, bucket: str, key: str, rel: str, etag: str, size: int, version: Any):
        extra: dict[str, Any] = {"etag": etag}
        if version and version != "null":
            extra["versionID"] = version
        uri = f"{self.schemes[0]}://{bucket}/{key}"
        return ReferenceObject(uri, rel, self._digest(etag), size, extra)

    def resolve(
        self, uri: str, checksum: bool, max_objects: int | None, config: Any
    ) -> list[ReferenceObject]:
        bucket, key, version = parse_uri(uri)
        if not bucket:
            raise ObjectNotFoundError(f"{uri}: no bucket in the URI")
        plain = f"{self.schemes[0]}://{bucket}/{key}"
        if not checksum:
            return [ReferenceObject(plain, "", plain, None)]
        limit = max_objects or DEFAULT_MAX_OBJECTS
        client = self.client(config)
        errors = _client_errors()
        if key and not key.endswith("/"):
            args: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version:
                args["VersionId"] = version
            try:
                head = client.head_object(**args)
            except errors as e:
                if _error_code(e) not in _NOT_FOUND or version:
                    raise _translate(e, uri) from e
            else:
                return [
                    self._entry(
                        bucket,
                        key,
                        "",
                        _etag(head.get("ETag")),
                        int(head["ContentLength"]),
                        head.get("VersionId"),
                    )
                ]
        prefix = key.rstrip("/") + "/" if key else ""
        try:
            out = self._list(client, bucket, prefix, limit, uri)
        except errors as e:
            raise _translate(e, uri) from e
        if not out:
            raise ObjectNotFoundError(f"{uri}: no such object or prefix")
        return out

    def _list(
        self, client: Any, bucket: str, prefix: str, limit: int, uri: str
    ) -> list[ReferenceObject]:
        out: list[ReferenceObject] = []
        if self._versioned(client, bucket):
            pages = client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix
            )
            items = (v for page in pages for v in page.get("Versions", []) if v.get("IsLatest"))
        else:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            items = (o for page in pages for o in page.get("Contents", []))
        for obj in items:
            k = obj["Key"]
            if k.endswith("/") and not obj.get("Size"):
                continue  # a "directory" marker, not data
            out.append(
                self._entry(
                    bucket,
                    k,
                    k[len(prefix) :],
                    _etag(obj.get("ETag")),
                    int(obj.get("Size", 0)),
                    obj.get("VersionId"),
                )
            )
            check_max_objects(len(out), limit, uri)
        out.sort(key=lambda r: r.path)  # servers list in different orders (DESIGN §8)
        return out

    @staticmethod
    def _versioned(client: Any, bucket: str) -> bool:
        """Whether the bucket keeps versions; False when we may not ask (then no pins)."""
        try:
            status = client.get_bucket_versioning(Bucket=bucket).get("Status")
        except _client_errors():
            return False
        return status in ("Enabled", "Suspended")

    def open(
        self, uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any
    ) -> BlobSource:
        bucket, key, version = parse_uri(uri)
        version = extra.get("versionID") or version
        etag = extra.get("etag")
        if etag is None and digest != f"{self.schemes[0]}://{bucket}/{key}":
            etag = self._etag_from_digest(digest)
        return S3Source(self.client(config), uri, bucket, key, version, _etag(etag) or None)

    def _etag_from_digest(self, digest: str) -> str:
        return digest

    def verifiable_md5_hex(self, uri: str, digest: str, extra: dict[str, Any]) -> str | None:
        # A single-part upload's ETag is the hex MD5 of the bytes; multipart ETags carry a
        # "-N" suffix (and are not an MD5 of the content).
        return digest if is_hex_md5(digest) else None


class GCSHandler(S3Handler):
    """gs:// over the XML interoperability endpoint (config.gcs_endpoint_url)."""

    schemes = ("gs",)
    gcs = True

    def _digest(self, etag: str) -> str:
        # W&B records a GCS object's md5_hash (base64); for non-composite objects the XML
        # API's ETag is that MD5 in hex. Composite objects keep their ETag as digest.
        return hex_to_b64(etag) if is_hex_md5(etag) else etag

    def _etag_from_digest(self, digest: str) -> str:
        return b64_to_hex(digest) or digest

    def verifiable_md5_hex(self, uri: str, digest: str, extra: dict[str, Any]) -> str | None:
        return b64_to_hex(digest)
