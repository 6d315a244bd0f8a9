"""Bytes: the shared content-addressed blob cache and the fetchers for references."""

from artifactfs.cache.blobcache import BlobCache, content_key, reference_key
from artifactfs.cache.source import BlobSource, SourceFactory

__all__ = ["BlobCache", "BlobSource", "SourceFactory", "content_key", "reference_key"]
