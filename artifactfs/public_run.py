"""The public, read-only view of a stored run: what `Api().run()` and `Artifact.logged_by()` return.

A stored run is a registry record (resolver.records.RunRecord): identity, config, and the full
names of what it logged and used. This view answers from that record alone, in any process, with
no run in progress; it is not the live `Run` of run.py that `init()` starts.

It is apart from api.py because both sides of lineage need it: `Artifact.logged_by()` returns a
Run and `Run.logged_artifacts()` returns Artifacts. To keep the modules acyclic this view never
imports artifact.py: whoever builds one passes how a version record becomes an artifact
(`Artifact._from_record`), and the class is generic in what that returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.resolver import Resolver

ArtifactT = TypeVar("ArtifactT")


class Run(Generic[ArtifactT]):
    """A run as stored in the registry (read-only): what it logged and what it used."""

    def __init__(
        self,
        record: RunRecord,
        resolver: Resolver,
        artifact_of: Callable[[VersionRecord, Resolver], ArtifactT],
    ) -> None:
        self._record = record
        self._resolver = resolver
        self._artifact_of = artifact_of

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def name(self) -> str | None:
        return self._record.name

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._record.config)

    @property
    def created_at(self) -> str:
        return self._record.created_at

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    def _artifacts(self, names: list[str]) -> list[ArtifactT]:
        out = []
        for full in names:
            try:
                record = self._resolver.registry.resolve(parse_artifact_name(full))
            except ArtifactNotFoundError:
                continue  # deleted since
            out.append(self._artifact_of(record, self._resolver))
        return out

    def logged_artifacts(self) -> list[ArtifactT]:
        return self._artifacts(self._record.logged)

    def used_artifacts(self) -> list[ArtifactT]:
        return self._artifacts(self._record.used)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path == other.path

    def __hash__(self) -> int:
        return hash(tuple(self.path))

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)}>"
