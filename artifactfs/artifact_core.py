"""An Artifact's state and attributes: the base every part of `Artifact` builds on.

`Artifact` (artifact.py) is one W&B-facing class assembled in layers, each in its own module:
this one holds the state (the manifest, the version record once logged, the staging bookkeeping),
the lifecycle guards (PENDING until logged, then COMMITTED, DELETED once deleted), and the
attributes W&B exposes (name, version, aliases, metadata, source_*...). artifact_content.py adds
the content building of a PENDING artifact, artifact.py the reads and registry operations of a
logged one. Entries (artifact_entry.py) point back at an artifact through this base, so nothing
here imports the layers above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from artifactfs.config import load_config
from artifactfs.errors import ArtifactFinalizedError, ArtifactNotLoggedError
from artifactfs.resolver.manifest import Manifest
from artifactfs.resolver.names import check_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import check_metadata
from artifactfs.resolver.resolver import Resolver


def default_artifact_dir() -> Path:
    """W&B downloads to ./artifacts/<name>:<version>; the base is the `artifact_dir` setting."""
    return load_config().artifact_dir


class ArtifactCore:
    """The state and attributes of a W&B-style Artifact (use `Artifact`, which builds on this)."""

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool | None = None,
        use_as: str | None = None,
    ) -> None:
        self._name = check_name(name, "artifact name")
        self._type = check_name(type, "type")
        self._description = description
        self._metadata = check_metadata(metadata)
        self.incremental = bool(incremental)
        self._use_as = use_as
        self._manifest = Manifest()  # PENDING: what add_* built; COMMITTED: the logged manifest
        self._aliases: list[str] = []
        self._final = False
        self._record: VersionRecord | None = None
        self._resolver: Resolver | None = None
        self._entity: str | None = None
        self._project: str | None = None
        # Staging of added content (artifact_content.py): local file -> its path in the
        # artifact, and the private directory new_file()/add() write into.
        self._added_local_paths: dict[str, str] = {}
        self._tmpdir: str | None = None
        self._deleted = False

    # -- guards ----------------------------------------------------------------------------------
    def _ensure_can_add(self) -> None:
        if self._final:
            raise ArtifactFinalizedError(
                f"artifact {self.name} is finalized; create a new Artifact to change its contents"
            )

    def _ensure_logged(self, what: str) -> VersionRecord:
        if self._record is None:
            raise ArtifactNotLoggedError(
                f"{what} needs a logged artifact; log {self._name} with run.log_artifact() first"
            )
        return self._record

    def _resolver_or_raise(self) -> Resolver:
        self._ensure_logged("this operation")
        assert self._resolver is not None
        return self._resolver

    # -- attributes ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """`collection:vN` once logged, the bare collection name before."""
        if self._record is None:
            return self._name
        return f"{self._record.name}:v{self._record.version}"

    @property
    def type(self) -> str:
        return self._type

    @property
    def entity(self) -> str | None:
        return self._entity

    @property
    def project(self) -> str | None:
        return self._project

    @property
    def qualified_name(self) -> str:
        return f"{self._entity}/{self._project}/{self._name}"

    @property
    def version(self) -> str:
        return f"v{self._ensure_logged('version').version}"

    @property
    def _source(self) -> dict[str, Any] | None:
        return self._record.source if self._record is not None else None

    @property
    def source_entity(self) -> str | None:
        return self._source["entity"] if self._source else self._entity

    @property
    def source_project(self) -> str | None:
        return self._source["project"] if self._source else self._project

    @property
    def source_name(self) -> str:
        if self._source:
            return f"{self._source['name']}:v{self._source['version']}"
        return self.name

    @property
    def source_qualified_name(self) -> str:
        if self._source:
            s = self._source
            return f"{s['entity']}/{s['project']}/{s['name']}"
        return self.qualified_name

    @property
    def source_version(self) -> str:
        if self._source:
            return f"v{self._source['version']}"
        return self.version

    @property
    def id(self) -> str | None:
        return self._record.id if self._record is not None else None

    @property
    def commit_hash(self) -> str:
        """MD5 (hex) of the committed manifest JSON: names exactly what was committed."""
        rec = self._ensure_logged("commit_hash")
        return rec.manifest_key.rsplit("/", 2)[-2] + rec.manifest_key.rsplit("/", 1)[-1][:-5]

    @property
    def digest(self) -> str:
        return self._manifest.digest()

    @property
    def size(self) -> int:
        return self._manifest.size

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def state(self) -> str:
        if self._deleted:
            return "DELETED"
        return "PENDING" if self._record is None else "COMMITTED"

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = value

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = check_metadata(value)

    @property
    def aliases(self) -> list[str]:
        """Mutable: edit the list, then `save()` persists the difference."""
        return self._aliases

    @aliases.setter
    def aliases(self, value: Sequence[str]) -> None:
        self._aliases = list(value)

    @property
    def created_at(self) -> str | None:
        return self._record.created_at if self._record is not None else None

    def _default_root(self) -> Path:
        return default_artifact_dir() / self.name
