"""Bytes: the shared content-addressed blob cache and the fetchers for references."""

from artifactfs.cache.accounting import PruneResult
from artifactfs.cache.blobcache import BlobCache
from artifactfs.cache.eviction import CacheInfo
from artifactfs.cache.layout import content_key, reference_key
from artifactfs.cache.scrub import ScrubResult
from artifactfs.cache.source import BlobSource, SourceFactory
from artifactfs.cache.stats import CacheStats

__all__ = [
    "BlobCache",
    "BlobSource",
    "CacheInfo",
    "CacheStats",
    "PruneResult",
    "ScrubResult",
    "SourceFactory",
    "content_key",
    "reference_key",
]
