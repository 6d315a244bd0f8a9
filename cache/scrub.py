"""The scrub behind `artifactfs cache verify`: re-hash every cached file, drop what fails.

The per-use check (seals.py) notices a file that was *written* after its verification; it cannot
notice bits that rot on the medium with the inode untouched. The scrub reads everything: whole
objects against their key's MD5 (or, for references, the MD5 their seal recorded at fill),
blocks against the CRC-32 their seal recorded. A file whose bytes are right but whose seal is
missing or stale (a cache copied with rsync, a chmod) is re-sealed; a file that fails, or that
has nothing to be checked against (a block or reference without a seal, e.g. from an older
version), is removed, so its next use fetches it again.

Safe to run while mounts and downloads use the cache: it never touches temporary files, a file
that disappears meanwhile is skipped, and a file replaced meanwhile (another process's fresh
fill) is left alone (layout.CacheFiles.discard compares inodes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

from artifactfs.cache.eviction import scan
from artifactfs.cache.layout import CacheFiles
from artifactfs.cache.seals import NO_SEAL
from artifactfs.cache.source import Progress

log = logging.getLogger(__name__)


@dataclass
class ScrubResult:
    """What a scrub found: every cached file is counted once as intact or dropped."""

    files: int = 0
    bytes: int = 0
    intact: int = 0
    resealed: int = 0
    """Intact files whose seal was missing or stale (re-sealed; counted in `intact` too)."""
    corrupt: int = 0
    """Dropped: the bytes differ from what was verified."""
    unverifiable: int = 0
    """Dropped: nothing to check them against (no seal, and no digest in the key)."""

    @property
    def dropped(self) -> int:
        return self.corrupt + self.unverifiable

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "dropped": self.dropped}


def _key_md5(files: CacheFiles, path: str) -> str | None:
    """`objects/md5/ab/cdef...` -> `abcdef...` (the MD5 a whole object's key promises)."""
    rel = os.path.relpath(path, files.objects).split(os.sep)
    if len(rel) == 3 and rel[0] == "md5":
        return rel[1] + rel[2]
    return None


def scrub(files: CacheFiles, progress: Progress | None = None) -> ScrubResult:
    """Re-hash every whole object and block under `files`; see the module docstring."""
    result = ScrubResult()
    for f in sorted(scan(files.objects, files.blocks), key=lambda f: f.path):
        try:
            fd = os.open(f.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # evicted meanwhile
        try:
            st = os.fstat(fd)
            sealed = files.seals.name_for(f.path) in f.seals  # sealed as it is now
            md5 = None if f.is_block else _key_md5(files, f.path)
            why = files.seals.verify(f.path, fd, md5_hex=md5, block=f.is_block)
            result.files += 1
            result.bytes += st.st_size
            if why is None:
                result.intact += 1
                if not sealed:
                    result.resealed += 1
            else:
                if why.startswith(NO_SEAL):
                    result.unverifiable += 1
                else:
                    result.corrupt += 1
                files.discard(f.path, why, fd=fd)
        finally:
            os.close(fd)
        if progress is not None:
            progress(f.size)
    log.info("cache verify: %s", result.as_dict())
    return result
