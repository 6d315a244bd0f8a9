"""Registry backends behind one Store interface; `open_store` picks one from a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifactfs.resolver.backends.base import ObjectInfo, Store
from artifactfs.resolver.backends.local import LocalStore

if TYPE_CHECKING:
    from artifactfs.settings import Config

__all__ = ["LocalStore", "ObjectInfo", "Store", "open_store"]


def open_store(url: str, config: Config | None = None) -> Store:
    """`s3://bucket/prefix` -> S3Store, `http(s)://...` -> read-only HttpStore, else a directory.

    The S3 and HTTP backends are imported here, when asked for, so a local registry never pays
    for importing requests (and the S3 backend's modules)."""
    if url.startswith("s3://"):
        from artifactfs.resolver.backends.s3 import S3Store

        return S3Store.from_url(url, config)
    if url.startswith(("http://", "https://")):
        from artifactfs.resolver.backends.http import HttpStore

        return HttpStore.from_url(url, config)
    if url.startswith("file://"):
        url = url[len("file://") :]
    return LocalStore(url)
