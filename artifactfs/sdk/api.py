"""The public query API (`artifactfs.Api()`), modelled on `wandb.Api()`.

Read-mostly access to the registry without starting a run: artifacts by name, a collection's
versions (newest first, as W&B lists them), collections and types of a project, runs (with
W&B's filters) and one run with its history. The run objects it returns (`Run`, re-exported
here as W&B users know it from `wandb.apis.public`) are the public view in public_run.py,
shared with `Artifact.logged_by()`/`used_by()`; collections and types are public_collections.py,
shared with `Artifact.collection`. This module imports the rest of the Python API and nothing
imports it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from artifactfs.errors import (
    ArtifactNotFoundError,
    ArtifactTypeMismatchError,
    InvalidNameError,
    RunNotFoundError,
)
from artifactfs.resolver.names import check_name, parse_artifact_name
from artifactfs.resolver.resolver import Resolver
from artifactfs.sdk.artifact import Artifact
from artifactfs.sdk.lookup import open_resolver, resolve_name
from artifactfs.sdk.public_collections import (
    ArtifactCollection,
    ArtifactType,
    project_collections,
    project_types,
)
from artifactfs.sdk.public_run import Run
from artifactfs.sdk.run_filters import matches, sort_runs
from artifactfs.sdk.session import RunSession, current

__all__ = ["Api", "ArtifactCollection", "ArtifactType", "Run"]


class Api:
    """Query the registry. `overrides` may hold `entity`, `project` and `registry` (W&B style)."""

    def __init__(
        self,
        overrides: dict[str, Any] | None = None,
        timeout: int | None = None,
        api_key: str | None = None,
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

    @property
    def default_entity(self) -> str:
        return self.entity

    # -- paths -----------------------------------------------------------------------------------
    def _project_path(self, path: str | None) -> tuple[str, str]:
        """`entity/project`, `project` or None -> (entity, project) with the defaults."""
        if not path:
            return self.entity, self.project
        parts = path.split("/")
        if len(parts) > 2:
            raise InvalidNameError(f"invalid project path {path!r}: use entity/project")
        entity = parts[0] if len(parts) == 2 else self.entity
        return check_name(entity, "entity"), check_name(parts[-1], "project")

    def _collection(self, name: str) -> tuple[str, str, str]:
        ref = parse_artifact_name(name).with_defaults(self.entity, self.project)
        return ref.entity or self.entity, ref.project or self.project, ref.name

    # -- artifacts -------------------------------------------------------------------------------
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

    def artifacts(
        self,
        type_name: str,
        name: str,
        per_page: int = 50,
        tags: Sequence[str] | None = None,
        order: str | None = None,
    ) -> list[Artifact]:
        """Every committed version of a collection, newest first (W&B's order; `order="+..."`
        for oldest first); `tags` keeps versions holding all of them."""
        entity, project, coll = self._collection(name)
        registry = self._resolver.registry
        registry.invalidate()
        rec = registry.collection(entity, project, coll)
        if type_name and rec.type != type_name:
            raise ArtifactTypeMismatchError(
                f"{entity}/{project}/{coll} holds {rec.type!r} artifacts, not {type_name!r}"
            )
        versions = registry.versions(entity, project, coll)
        if tags:
            versions = [v for v in versions if set(tags) <= set(v.tags)]
        if not (order or "").startswith("+"):
            versions = list(reversed(versions))
        return [Artifact._from_record(v, self._resolver) for v in versions]

    def artifact_versions(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        """W&B's older name of `artifacts()` (newest first, as there)."""
        return self.artifacts(type_name, name, per_page)

    # -- collections and types -------------------------------------------------------------------
    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection[Artifact]:
        """The collection `[[entity/]project/]name` holding artifacts of `type_name`."""
        entity, project, coll = self._collection(name)
        return ArtifactCollection(
            self._resolver, entity, project, coll, type_name, Artifact._from_record
        )

    def artifact_collections(
        self, project_name: str, type_name: str, per_page: int = 50
    ) -> list[ArtifactCollection[Artifact]]:
        """The collections of `type_name` in `[entity/]project`, by name."""
        entity, project = self._project_path(project_name)
        return project_collections(
            self._resolver, entity, project, type_name, Artifact._from_record
        )

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        try:
            self.artifact_collection(type, name)
        except (ArtifactNotFoundError, ArtifactTypeMismatchError):
            return False
        return True

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType[Artifact]:
        entity, proj = self._project_path(project)
        if not any(t.name == type_name for t in self.artifact_types(f"{entity}/{proj}")):
            raise ArtifactNotFoundError(f"no artifact type {type_name!r} in {entity}/{proj}")
        return ArtifactType(self._resolver, entity, proj, type_name, Artifact._from_record)

    def artifact_types(self, project: str | None = None) -> list[ArtifactType[Artifact]]:
        """The artifact types in use in `[entity/]project` (each with `.collections()`)."""
        entity, proj = self._project_path(project)
        return project_types(self._resolver, entity, proj, Artifact._from_record)

    # -- runs ------------------------------------------------------------------------------------
    def runs(
        self,
        path: str | None = None,
        filters: Mapping[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = False,
        lazy: bool = True,
    ) -> list[Run[Artifact]]:
        """The runs of `[entity/]project` that match W&B's `filters` (run_filters.py), in
        `order` (default oldest first)."""
        entity, project = self._project_path(path)
        records = [
            r for r in self._resolver.registry.runs.runs(entity, project) if matches(r, filters)
        ]
        return [Run(r, self._resolver, Artifact._from_record) for r in sort_runs(records, order)]

    def run(self, path: str = "") -> Run[Artifact]:
        """`entity/project/run_id` (or shorter, with defaults) -> the stored run."""
        parts = path.split("/")
        run_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else self.project
        entity = parts[-3] if len(parts) >= 3 else self.entity
        record = self._resolver.registry.run(entity, project, run_id)
        if record is None:
            raise RunNotFoundError(f"no run {entity}/{project}/{run_id}")
        return Run(record, self._resolver, Artifact._from_record)
