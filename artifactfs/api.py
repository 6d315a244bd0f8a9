"""The public query API (`artifactfs.Api()`), modelled on `wandb.Api()`.

Read-mostly access to the registry without starting a run: fetch an artifact by name, list
versions of a collection, fetch a stored run. The run objects it returns (`Run`, re-exported
here as W&B users know it from `wandb.apis.public`) are the public view in public_run.py, shared
with `Artifact.logged_by()`/`used_by()`. W&B's further query methods (collections, types, runs)
belong here; this module imports the rest of the Python API and nothing imports it back.
"""

from __future__ import annotations

from typing import Any

from artifactfs.artifact import Artifact
from artifactfs.errors import ArtifactNotFoundError, ArtifactTypeMismatchError
from artifactfs.lookup import open_resolver, resolve_name
from artifactfs.public_run import Run
from artifactfs.resolver.names import check_name, parse_artifact_name
from artifactfs.resolver.resolver import Resolver
from artifactfs.session import RunSession, current

__all__ = ["Api", "Run"]


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
        run = current(RunSession)
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

    def run(self, path: str) -> Run[Artifact]:
        """`entity/project/run_id` (or shorter, with defaults) -> the stored run."""
        parts = path.split("/")
        run_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else self.project
        entity = parts[-3] if len(parts) >= 3 else self.entity
        record = self._resolver.registry.run(entity, project, run_id)
        if record is None:
            raise ArtifactNotFoundError(f"no run {entity}/{project}/{run_id}")
        return Run(record, self._resolver, Artifact._from_record)
