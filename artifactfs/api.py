"""The public query API (`artifactfs.Api()`), modelled on `wandb.Api()`.

Read-mostly access to the registry without starting a run: fetch an artifact by name, list
versions of a collection, and the public Run objects that `logged_by()`/`used_by()` return.
"""

from __future__ import annotations

from typing import Any

from artifactfs.artifact import Artifact
from artifactfs.errors import ArtifactNotFoundError, ArtifactTypeMismatchError
from artifactfs.lookup import open_resolver, resolve_name
from artifactfs.resolver.names import check_name, parse_artifact_name
from artifactfs.resolver.records import RunRecord
from artifactfs.resolver.resolver import Resolver


class Run:
    """A run as stored in the registry (read-only): what it logged and what it used."""

    def __init__(self, record: RunRecord, resolver: Resolver) -> None:
        self._record = record
        self._resolver = resolver

    id = property(lambda self: self._record.id)
    entity = property(lambda self: self._record.entity)
    project = property(lambda self: self._record.project)
    name = property(lambda self: self._record.name)
    job_type = property(lambda self: self._record.job_type)
    config = property(lambda self: dict(self._record.config))
    created_at = property(lambda self: self._record.created_at)

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    def _artifacts(self, names: list[str]) -> list[Artifact]:
        out = []
        for full in names:
            try:
                record = self._resolver.registry.resolve(parse_artifact_name(full))
            except ArtifactNotFoundError:
                continue  # deleted since
            out.append(Artifact._from_record(record, self._resolver))
        return out

    def logged_artifacts(self) -> list[Artifact]:
        return self._artifacts(self._record.logged)

    def used_artifacts(self) -> list[Artifact]:
        return self._artifacts(self._record.used)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path == other.path

    def __hash__(self) -> int:
        return hash(tuple(self.path))

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)}>"


class Api:
    """Query the registry. `overrides` may hold `entity`, `project` and `registry` (W&B style)."""

    def __init__(
        self,
        overrides: dict[str, Any] | None = None,
        *,
        registry: str | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        registry = registry or overrides.pop("registry", None)
        self._resolver = resolver or open_resolver(registry)
        # Defaults: explicit overrides, else the current run's (as in a W&B script), else config.
        from artifactfs.run import current_run

        run = current_run()
        cfg = self._resolver.config
        entity = overrides.get("entity") or (run.entity if run else cfg.entity)
        project = overrides.get("project") or (run.project if run else cfg.project)
        self.entity = check_name(entity, "entity")
        self.project = check_name(project, "project")

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """`[[entity/]project/]name[:alias|:vN]` or a digest -> the logged Artifact."""
        record = resolve_name(self._resolver, name, type, self.entity, self.project)
        return Artifact._from_record(record, self._resolver)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type)
        except (ArtifactNotFoundError, ArtifactTypeMismatchError):
            return False
        return True

    def _collection(self, name: str) -> tuple[str, str, str]:
        ref = parse_artifact_name(name).with_defaults(self.entity, self.project)
        return ref.entity or self.entity, ref.project or self.project, ref.name

    def artifact_versions(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        """Every committed version of a collection, oldest first."""
        entity, project, coll = self._collection(name)
        registry = self._resolver.registry
        rec = registry.collection(entity, project, coll)
        if type_name and rec.type != type_name:
            raise ArtifactTypeMismatchError(
                f"{entity}/{project}/{coll} holds {rec.type!r} artifacts, not {type_name!r}"
            )
        return [
            Artifact._from_record(v, self._resolver)
            for v in registry.versions(entity, project, coll)
        ]

    def artifacts(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        return self.artifact_versions(type_name, name, per_page)

    def run(self, path: str) -> Run:
        """`entity/project/run_id` (or shorter, with defaults) -> the stored run."""
        parts = path.split("/")
        run_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else self.project
        entity = parts[-3] if len(parts) >= 3 else self.entity
        record = self._resolver.registry.run(entity, project, run_id)
        if record is None:
            raise ArtifactNotFoundError(f"no run {entity}/{project}/{run_id}")
        return Run(record, self._resolver)
