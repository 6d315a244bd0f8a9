"""Reference handlers: entries whose bytes live outside the registry (file, http(s), s3, gs, ...).

The seam is three functions, dispatched on the URI scheme to one handler module per scheme
(file.py, http.py, s3.py for s3 and gs, other.py for everything else):
- `resolve_reference(uri, checksum, max_objects)` at add time: what objects the URI names now
  (a file or a directory/prefix expanded), with the digest and size the scheme provides.
- `open_reference(uri, digest, size, extra)` at read time: a BlobSource for one object, pinned
  to the version recorded at add time where the scheme allows (S3 versionId, ETag checks).
- `verifiable_md5_hex(uri, digest, extra)`: the MD5 a fill can be verified against, if any.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from artifactfs.cache.references.base import (
    DEFAULT_MAX_OBJECTS,
    ReferenceHandler,
    ReferenceObject,
)
from artifactfs.cache.references.file import FileHandler
from artifactfs.cache.references.http import HTTPHandler
from artifactfs.cache.references.other import TrackingHandler
from artifactfs.cache.references.s3 import GCSHandler, S3Handler
from artifactfs.cache.source import BlobSource
from artifactfs.errors import NotDownloadableError, TooManyObjectsError

_HANDLERS: dict[str, ReferenceHandler] = {
    scheme: handler
    for handler in (FileHandler(), HTTPHandler(), S3Handler(), GCSHandler())
    for scheme in handler.schemes
}
_FALLBACK = TrackingHandler()


def handler_for(uri: str) -> ReferenceHandler:
    """The handler of `uri`'s scheme (a tracking-only handler for unknown schemes)."""
    return _HANDLERS.get(urlparse(uri).scheme.lower(), _FALLBACK)


def resolve_reference(
    uri: str, checksum: bool = True, max_objects: int | None = None, config: Any = None
) -> list[ReferenceObject]:
    """The objects `uri` names now, sorted by `path` (raises TooManyObjectsError beyond
    `max_objects`, default 10,000 as in W&B; ObjectNotFoundError if it names nothing)."""
    return handler_for(uri).resolve(uri, checksum, max_objects, config)


def open_reference(
    uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any = None
) -> BlobSource:
    """A source for one logged reference object (NotDownloadableError for unknown schemes)."""
    return handler_for(uri).open(uri, digest, size, extra, config)


def verifiable_md5_hex(uri: str, digest: str, extra: dict[str, Any]) -> str | None:
    """The MD5 (hex) the fetched bytes must have, when the recorded digest is one; else None.

    file:// with checksum: the base64 MD5; s3://: a single-part ETag (32 hex, no dash); gs://:
    the base64 MD5. HTTP ETags are opaque and tracking-only URIs are the URI itself: None.
    """
    return handler_for(uri).verifiable_md5_hex(uri, digest, extra)


__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "NotDownloadableError",
    "ReferenceHandler",
    "ReferenceObject",
    "TooManyObjectsError",
    "handler_for",
    "open_reference",
    "resolve_reference",
    "verifiable_md5_hex",
]
