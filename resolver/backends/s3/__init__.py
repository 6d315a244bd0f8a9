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

    store.py     S3Store: the Store methods as S3 requests
    errors.py    botocore/s3transfer failures -> our named errors
    probe.py     the conditional-write probe
    transfer.py  s3transfer, upload verification, zero-copy ranged reads
"""

from artifactfs.resolver.backends.s3.store import S3Store, parse_s3_url

__all__ = ["S3Store", "parse_s3_url"]
