"""Reference handlers: entries whose bytes live outside the registry (file, http(s), s3, gs, ...).

The seam is two functions, dispatched on the URI scheme:
- `resolve_reference(uri, checksum, max_objects)` at add time: what objects the URI names now
  (a file or a directory/prefix expanded), with the digest and size the scheme provides.
- `open_reference(uri, digest, size, extra)` at read time: a BlobSource for one object, pinned
  to the version recorded at add time where the scheme allows (S3 versionId, ETag checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from artifactfs.cache.source import BlobSource


@dataclass
class ReferenceObject:
    """One object named by a reference URI, as resolved at add time.

    `path` is its name relative to the URI (empty when the URI names a single object); `digest`
    is what the scheme provides (md5 base64 for file:// with checksum, the ETag for http/s3/gs,
    a hash of the URI otherwise); `extra` carries pins such as {"versionID": ..., "etag": ...}.
    """

    uri: str
    path: str
    digest: str
    size: int | None
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_reference(
    uri: str, checksum: bool = True, max_objects: int | None = None, config: Any = None
) -> list[ReferenceObject]:
    raise NotImplementedError("reference handlers are being written")


def open_reference(
    uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any = None
) -> BlobSource:
    raise NotImplementedError("reference handlers are being written")


def verifiable_md5_hex(uri: str, digest: str, extra: dict[str, Any]) -> str | None:
    """The MD5 (hex) the fetched bytes must have, when the recorded digest is one; else None."""
    return None
