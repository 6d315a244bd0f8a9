"""Any scheme without a handler: tracked by name only. The entry's digest is the URI itself, as
W&B's TrackingHandler records it, so the same reference gives the same artifact digest in both."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from artifactfs.cache.references.base import ReferenceHandler, ReferenceObject
from artifactfs.cache.source import BlobSource
from artifactfs.errors import NotDownloadableError


class TrackingHandler(ReferenceHandler):
    """References we cannot read (e.g. `nfs://`, `hdfs://`): recorded, never downloaded."""

    def resolve(
        self, uri: str, checksum: bool, max_objects: int | None, config: Any
    ) -> list[ReferenceObject]:
        return [ReferenceObject(uri=uri, path="", digest=uri, size=None)]

    def open(
        self, uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any
    ) -> BlobSource:
        scheme = urlparse(uri).scheme or "(none)"
        raise NotDownloadableError(
            f"cannot download {uri}: scheme {scheme!r} is tracked by name only "
            "(supported for download: file, http, https, s3, gs)"
        )
