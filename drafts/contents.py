"""What a draft would commit: its full contents as a manifest, and how that differs from the base.

Apart from the view because it is the one translation from the two layers (staged files on disk,
stored entries of the overlay) into the manifest a version records. Whatever a manifest learns
to carry about a file (today digest, size, reference) is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file


@dataclass
class DraftDiff:
    """Draft paths added, modified (other digest) and removed against the base version."""

    added: list[str]
    modified: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.removed)


def build_manifest(staged: Iterable[tuple[str, Path]], stored: Iterable[ManifestEntry]) -> Manifest:
    """Staged files are hashed (with local_path set so the registry can upload them); stored
    entries not shadowed by a staged file keep digest/size/ref."""
    manifest = Manifest()
    seen: set[str] = set()
    for path, disk in staged:
        seen.add(path)
        manifest.add(
            ManifestEntry(
                path=path,
                digest=md5_b64_of_file(str(disk)),
                size=disk.stat().st_size,
                local_path=str(disk),
            )
        )
    for entry in stored:
        if entry.path not in seen:
            manifest.add(replace(entry, extra=dict(entry.extra), local_path=None))
    return manifest


def diff(base: Manifest | None, manifest: Manifest) -> DraftDiff:
    base = base or Manifest()
    added = sorted(p for p in manifest.entries if p not in base.entries)
    modified = sorted(
        p
        for p, e in manifest.entries.items()
        if p in base.entries and base.entries[p].digest != e.digest
    )
    removed = sorted(p for p in base.entries if p not in manifest.entries)
    return DraftDiff(added, modified, removed)
