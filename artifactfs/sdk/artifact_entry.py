"""Manifest entries handed to users: a `ManifestEntry` that knows the artifact it belongs to.

W&B users call `artifact.get_path("x").download()` and `entry.ref_url()` (an `artifact://` URL,
which fsspec opens), so an entry returned by `add_file`, `get_path` or `add_reference` carries
its artifact. It is apart from artifact.py so that both the content building
(artifact_content.py) and the reads (artifact.py) can hand entries out; it points back through
`ArtifactCore`, which imports nothing above it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from artifactfs.errors import ArtifactNotLoggedError
from artifactfs.resolver.download import download_manifest
from artifactfs.resolver.manifest import ManifestEntry, artifact_url
from artifactfs.sdk.artifact_core import ArtifactCore


class ArtifactManifestEntry(ManifestEntry):
    """A manifest entry that knows its artifact, so `get_path(...).download()` works."""

    _artifact: ArtifactCore | None = None

    @classmethod
    def of(cls, entry: ManifestEntry, artifact: ArtifactCore | None) -> ArtifactManifestEntry:
        out = cls(
            path=entry.path,
            digest=entry.digest,
            size=entry.size,
            ref=entry.ref,
            extra=dict(entry.extra),
            birth_artifact_id=entry.birth_artifact_id,
            local_path=entry.local_path,
        )
        out._artifact = artifact
        return out

    def _logged(self) -> ArtifactCore:
        if self._artifact is None or self._artifact._record is None:
            raise ArtifactNotLoggedError(f"{self.path}: its artifact has not been logged")
        return self._artifact

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        skip_cache: bool | None = None,
        executor: object = None,
    ) -> str:
        """Download this one file (through the cache) under `root`; return its local path.
        `skip_cache` and `executor` are accepted for W&B compatibility."""
        art = self._logged()
        base = Path(root) if root is not None else art._default_root()
        download_manifest(art._resolver_or_raise(), art._manifest, base, paths=[self.path])
        return str(Path(base).absolute() / self.path)

    def ref_url(self) -> str:
        """`artifact://entity/project/name:vN/path`, this file of this version (as W&B's
        `wandb-artifact://` URLs): `fsspec.open` reads it (artifactfs.fsspec.filesystem), and another
        artifact's `add_reference` takes it, storing the entry by digest."""
        record = self._logged()._record
        assert record is not None  # _logged() checked it
        return artifact_url(record.entity, record.project, record.name, record.version, self.path)


class ArtifactFile:
    """One file of a logged artifact as W&B's public API lists it (`Artifact.files()`)."""

    def __init__(self, artifact: ArtifactCore, path: str) -> None:
        self._artifact = artifact
        entry = artifact.manifest.get(path)
        assert entry is not None
        self.name = path
        self.path = path
        self.size = entry.size or 0
        self.digest = entry.digest
        self.md5 = entry.digest
        self.ref = entry.ref

    def download(
        self, root: str | os.PathLike[str] = ".", replace: bool = False, exist_ok: bool = False
    ) -> io.TextIOWrapper:
        """Download under `root` and return the file opened for reading (W&B's File): an
        existing file is an error unless `replace` (download again) or `exist_ok` (keep it)."""
        target = Path(root) / self.name
        if target.exists() and not replace:
            if exist_ok:
                return open(target)
            raise ValueError(
                "File already exists, pass replace=True to overwrite "
                "or exist_ok=True to leave it as is and don't error."
            )
        if target.exists():
            target.unlink()
        entry = self._artifact.manifest.get(self.name)
        assert entry is not None
        return open(ArtifactManifestEntry.of(entry, self._artifact).download(root))

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.size} bytes)>"
