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

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from artifactfs.errors import ArtifactFinalizedError, ArtifactNotLoggedError
from artifactfs.resolver.manifest import Manifest
from artifactfs.resolver.names import check_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import check_metadata
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

MAX_TAG_LENGTH = 128


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
        self._saved_aliases: list[str] = []  # as last read from the registry (save() diffs)
        self._final = False
        self._record: VersionRecord | None = None
        self._resolver: Resolver | None = None
        self._entity: str | None = None
        self._project: str | None = None
        # Staging of added content (artifact_content.py): local file -> its path in the
        # artifact, and the private directory new_file()/add() write into.
        self._added_local_paths: dict[str, str] = {}
        self._tmpdir: str | None = None
        self._hash_progress: Callable[[int], None] | None = None  # bytes hashed (CLI's bar)
        self._deleted = False
        # Version attributes that can be set before logging and are stored with the version.
        self._ttl: timedelta | None = None
        self._ttl_changed = False
        self._tags: list[str] = []
        self._pending_tags: list[str] | None = None
        self._base_id: str | None = None  # the version a new_draft() was made from

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

    def is_draft(self) -> bool:
        """True until the artifact is logged (W&B: not saved yet)."""
        return self._record is None

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
    def entity(self) -> str:
        """The entity of the collection this version was fetched from (W&B: only once logged)."""
        return self._ensure_logged("entity").entity

    @property
    def project(self) -> str:
        return self._ensure_logged("project").project

    @property
    def qualified_name(self) -> str:
        """`entity/project/name:vN` (W&B's form: `name` already holds the version)."""
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def version(self) -> str:
        return f"v{self._ensure_logged('version').version}"

    @property
    def url(self) -> str:
        """Where this version lives: `artifact://entity/project/name:vN`, which `fsspec.open`,
        pandas and `UPath` open through artifactfs (W&B's is its web page, which needs its
        server; `artifactfs ui` shows the version at `/a/entity/project/name:vN/files/`).
        "" before the artifact is logged, as W&B's."""
        if self._record is None:
            return ""
        return f"artifact://{self.qualified_name}"

    @property
    def _source(self) -> dict[str, Any] | None:
        return self._record.link_source if self._record is not None else None

    @property
    def source_entity(self) -> str:
        if self._source:
            return str(self._source["entity"])
        return self.entity

    @property
    def source_project(self) -> str:
        if self._source:
            return str(self._source["project"])
        return self.project

    @property
    def source_name(self) -> str:
        if self._source:
            return f"{self._source['name']}:v{self._source['version']}"
        return self.name

    @property
    def source_qualified_name(self) -> str:
        return f"{self.source_entity}/{self.source_project}/{self.source_name}"

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
    def created_at(self) -> str:
        return self._ensure_logged("created_at").created_at

    @property
    def updated_at(self) -> str:
        """When the version record last changed (description, metadata, tags, ttl...)."""
        rec = self._ensure_logged("updated_at")
        return rec.updated_at or rec.created_at

    @property
    def file_count(self) -> int:
        return len(self._manifest)

    @property
    def is_link(self) -> bool:
        """True for a version of a portfolio that links a source version (W&B's linked
        artifact); False for a source version and for an unlogged artifact."""
        return self._record is not None and self._record.link_source is not None

    @property
    def use_as(self) -> str | None:
        """Accepted for W&B compatibility (deprecated there); stored nowhere."""
        return self._use_as

    @property
    def tags(self) -> list[str]:
        """Tags of the version (W&B: only once logged; pass `tags=` to log_artifact to tag
        at logging). Assign a new list, then `save()`."""
        self._ensure_logged("tags")
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._ensure_logged("tags")
        self._tags = check_tags(value)

    @property
    def ttl(self) -> timedelta | None:
        """Time to live from `created_at`: after it the version is deleted by the TTL sweep
        (`artifactfs ttl-sweep`). None: never. Set before logging or before `save()`."""
        return self._ttl

    @ttl.setter
    def ttl(self, value: timedelta | None) -> None:
        if value is not None:
            if not isinstance(value, timedelta):
                raise TypeError(f"ttl must be a datetime.timedelta or None, not {value!r}")
            if value.total_seconds() <= 0:
                raise ValueError(f"artifact TTL must be positive, got {value}")
        if self.is_link:
            raise ValueError(
                "cannot set the TTL of a linked artifact; set it on the source artifact"
            )
        self._ttl = value
        self._ttl_changed = True

    def _default_root(self, include_version: bool = True) -> Path:
        """W&B's default download root: <artifact_dir>/<source name>:<version> (checkout():
        without the version, <artifact_dir>/<source name>)."""
        name = self.source_name if include_version else self.source_name.split(":")[0]
        return default_artifact_dir() / name


def check_tags(tags: Sequence[str]) -> list[str]:
    """W&B's tag rule: strings of letters, digits, spaces, `-`, `_`, `.` (here up to 128)."""
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for tag in tags:
        if (
            not isinstance(tag, str)
            or not tag
            or len(tag) > MAX_TAG_LENGTH
            or not all(c.isalnum() or c in " -_." for c in tag)
        ):
            raise ValueError(f"invalid tag {tag!r}: use letters, digits, spaces, '-', '_' or '.'")
        out.append(tag)
    return list(dict.fromkeys(out))
