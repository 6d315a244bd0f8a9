"""A version's manifest index on local disk: where it lives and how it is obtained.

WHY here and not in the mount: every front end that lists a version's files (the mount, the web
page) should pay for a big manifest once, not once per front end and never once per request. The
index file is named by the manifest key, which is immutable, so one file under the cache dir
serves every process that reads that version, online or offline. It is obtained, in order, from:

1. the index dir (an earlier process made or fetched it),
2. the registry's prebuilt index (stored at commit for big manifests), checked like a manifest
   (`check_untrusted`) since it comes from the store,
3. the manifest itself, indexed here (in a child process when it is big).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from artifactfs.errors import BackendError
from artifactfs.resolver.manifest_index import (
    IndexError_,
    ManifestIndex,
    check_untrusted,
    open_or_build,
)
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry

log = logging.getLogger(__name__)

INDEX_DIR_NAME = "mount-index"
"""Subfolder of the cache dir holding index files (named for the mount, which came first)."""


def default_index_dir(cache_dir: str | os.PathLike[str]) -> Path:
    return Path(cache_dir) / INDEX_DIR_NAME


def index_file(index_dir: Path, record: VersionRecord) -> Path:
    return index_dir / (hashlib.sha256(record.manifest_key.encode()).hexdigest() + ".idx")


@dataclass
class LoadedIndex:
    """An open index and where it came from: "disk", "fetched" (prebuilt) or "built"."""

    index: ManifestIndex
    origin: str


def load_index(registry: Registry, record: VersionRecord, index_dir: Path) -> LoadedIndex:
    """The mapped index of `record`'s manifest. Raises ObjectNotFoundError when the manifest is
    missing, BackendError/OSError when it cannot be fetched (a failed prebuilt fetch only
    falls back to indexing the manifest)."""
    ipath = index_file(index_dir, record)
    try:
        return LoadedIndex(ManifestIndex(ipath), "disk")
    except (OSError, IndexError_):
        pass
    fetched = _fetch_prebuilt(registry, record, ipath)
    if fetched is not None:
        return LoadedIndex(fetched, "fetched")
    manifest_file, temporary = _manifest_file(registry, record, index_dir)
    try:
        index = open_or_build(manifest_file, ipath)
    finally:
        if temporary:
            os.unlink(manifest_file)
    log.info("indexed %s: %d entries", record.full_name, len(index))
    return LoadedIndex(index, "built")


def _fetch_prebuilt(registry: Registry, record: VersionRecord, ipath: Path) -> ManifestIndex | None:
    """The index the committer stored for a big version, checked like a manifest; None when
    there is none or it is unusable (then the manifest is indexed here)."""
    try:
        if not registry.fetch_manifest_index(record, ipath):
            return None
        index = ManifestIndex(ipath)
        check_untrusted(index)
    except (IndexError_, BackendError, OSError) as e:
        log.warning("prebuilt index of %s not used: %s", record.full_name, e)
        ipath.unlink(missing_ok=True)
        return None
    log.info("fetched the index of %s: %d entries", record.full_name, len(index))
    return index


def _manifest_file(registry: Registry, record: VersionRecord, index_dir: Path) -> tuple[Path, bool]:
    """A local file holding the manifest JSON, and whether it is ours to delete.

    Uses the registry's on-disk object cache when it has the manifest, so an offline process
    can index what an earlier one fetched.
    """
    local = registry.manifest_path(record)
    if local is not None:
        return local, False
    raw = registry.manifest_bytes(record)
    index_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=index_dir, prefix=".manifest.")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return Path(tmp), True
