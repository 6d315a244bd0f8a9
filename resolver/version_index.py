"""The manifest index of one version, shared on disk by every front end (mount, fsspec).

WHY here and not in a front end: the mount and the fsspec file system both list versions through
a `ManifestIndex`, and a version indexed by one is reused by the other (and by every later
process, online or offline): the index file is named by the manifest key, which never changes.
How an index is obtained, in order: the file already in the index dir; the prebuilt index the
committer stored beside a big manifest (checked like a manifest, refused if unsafe); else built
here from the manifest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

from artifactfs.errors import BackendError
from artifactfs.resolver.index_check import check_untrusted
from artifactfs.resolver.manifest_index import IndexError_, ManifestIndex, open_or_build
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry

log = logging.getLogger(__name__)

INDEX_DIR = "mount-index"
"""Where indexes live, under the cache dir (the name predates the fsspec front end)."""

How = Literal["cached", "fetched", "built"]


def index_dir(cache_dir: str | os.PathLike[str]) -> Path:
    return Path(cache_dir) / INDEX_DIR


def index_file(directory: Path, record: VersionRecord) -> Path:
    return directory / (hashlib.sha256(record.manifest_key.encode()).hexdigest() + ".idx")


def open_version_index(
    registry: Registry, record: VersionRecord, directory: Path
) -> tuple[ManifestIndex, How]:
    """The index of `record`'s manifest and how it was obtained.

    Raises what the registry raises when the manifest cannot be had (ObjectNotFoundError when
    it is missing, BackendError/OSError when the store fails); callers map those to their errno.
    The version's block digests are loaded too (resolver/blockrecord.py), so ranged reads of
    its big entries are checked block by block.
    """
    registry.reader.block_digests.load(record)
    ipath = index_file(directory, record)
    try:
        return ManifestIndex(ipath), "cached"
    except (OSError, IndexError_):
        pass
    index = _fetch_prebuilt(registry, record, ipath)
    if index is not None:
        log.info("fetched the index of %s: %d entries", record.full_name, len(index))
        return index, "fetched"
    manifest_file, temporary = _manifest_file(registry, record, directory)
    try:
        index = open_or_build(manifest_file, ipath)
    finally:
        if temporary:
            os.unlink(manifest_file)
    log.info("indexed %s: %d entries", record.full_name, len(index))
    return index, "built"


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
    return index


def _manifest_file(registry: Registry, record: VersionRecord, directory: Path) -> tuple[Path, bool]:
    """A local file holding the manifest JSON, and whether it is ours to delete.

    Uses the registry's on-disk object cache when it has the manifest, so an offline process
    can index what an earlier one fetched.
    """
    local = registry.manifest_path(record)
    if local is not None:
        return local, False
    raw = registry.manifest_bytes(record)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest.")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return Path(tmp), True
