"""Collections and types as W&B's public API shows them: `ArtifactCollection`, `ArtifactType`.

`Api().artifact_collection(type, name)` and `Artifact.collection` return an ArtifactCollection:
its description and tags, the aliases in use, its versions (newest first, as W&B lists them),
and `save()` (description, tags, and a changed `name` renames it) and `delete()`. An
ArtifactType groups a project's collections by type; types are not stored on their own, they
are the types the collection records hold.

Like public_run.py this sits below artifact.py and api.py and never imports artifact.py:
whoever builds one passes how a version record becomes an artifact, and the classes are generic
in what that returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver.records import CollectionRecord, VersionRecord
from artifactfs.resolver.resolver import Resolver

ArtifactT = TypeVar("ArtifactT")
ArtifactOf = Callable[[VersionRecord, Resolver], ArtifactT]


def check_collection_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or not all(c.isalnum() or c in " -_." for c in tag):
            raise ValueError(f"invalid tag {tag!r}: use letters, digits, spaces, '-', '_' or '.'")
        out.append(tag)
    return list(dict.fromkeys(out))


class ArtifactCollection(Generic[ArtifactT]):
    """One collection (W&B: artifact sequence, or portfolio when its versions are links)."""

    def __init__(
        self,
        resolver: Resolver,
        entity: str,
        project: str,
        name: str,
        type: str | None,
        artifact_of: ArtifactOf[ArtifactT],
    ) -> None:
        registry = resolver.registry
        registry.invalidate()
        record = registry.collection(entity, project, name)
        if record.state != "ACTIVE":
            raise ArtifactNotFoundError(
                f"artifact collection {entity}/{project}/{name} is {record.state.lower()}"
            )
        if type is not None and record.type != type:
            raise ArtifactNotFoundError(
                f"{entity}/{project}/{name} holds {record.type!r} artifacts, not {type!r}"
            )
        self._resolver = resolver
        self._artifact_of = artifact_of
        self._saved = record
        self.entity = entity
        self.project = project
        self._name = record.name
        self._description = record.description
        self._tags = list(record.tags)

    # -- attributes ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return f"{self.entity}/{self.project}/{self._saved.name}"

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def type(self) -> str:
        return self._saved.type

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = value

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        self._tags = check_collection_tags(value)

    @property
    def created_at(self) -> str:
        return self._saved.created_at

    @property
    def updated_at(self) -> str | None:
        return self._saved.updated_at

    @property
    def aliases(self) -> list[str]:
        """Every alias in use on a version of this collection."""
        amap = self._resolver.registry.aliases(self.entity, self.project, self._saved.name)
        return sorted(amap)

    def is_sequence(self) -> bool:
        """False for a portfolio (its versions link other collections' versions)."""
        versions = self._records()
        return not versions or versions[-1].link_source is None

    # -- versions --------------------------------------------------------------------------------
    def _records(self) -> list[VersionRecord]:
        return self._resolver.registry.versions(self.entity, self.project, self._saved.name)

    def artifacts(self, per_page: int = 50) -> list[ArtifactT]:
        """Every version, newest first (W&B's order)."""
        return [self._artifact_of(r, self._resolver) for r in reversed(self._records())]

    def versions(self, per_page: int = 50) -> list[ArtifactT]:
        return self.artifacts(per_page)

    # -- changes ---------------------------------------------------------------------------------
    def save(self) -> None:
        """Persist description and tags; a changed `name` renames the collection."""
        registry = self._resolver.registry
        tags = check_collection_tags(self._tags)
        description = self._description

        def change(rec: CollectionRecord) -> None:
            rec.description = description
            rec.tags = tags

        self._saved = registry.update_collection(
            self.entity, self.project, self._saved.name, change
        )
        if self._name != self._saved.name:
            self._saved = registry.rename_collection(
                self.entity, self.project, self._saved.name, self._name
            )

    def delete(self) -> None:
        """Delete the collection: every version is tombstoned, its aliases removed."""
        self._resolver.registry.delete_collection(self.entity, self.project, self._saved.name)

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self._saved.name} ({self.type})>"


class ArtifactType(Generic[ArtifactT]):
    """The collections of one type in one project."""

    def __init__(
        self,
        resolver: Resolver,
        entity: str,
        project: str,
        type_name: str,
        artifact_of: ArtifactOf[ArtifactT],
    ) -> None:
        self._resolver = resolver
        self._artifact_of = artifact_of
        self.entity = entity
        self.project = project
        self.type = type_name

    @property
    def name(self) -> str:
        return self.type

    @property
    def id(self) -> str:
        return f"{self.entity}/{self.project}/{self.type}"

    def collections(self, per_page: int = 50) -> list[ArtifactCollection[ArtifactT]]:
        return project_collections(
            self._resolver, self.entity, self.project, self.type, self._artifact_of
        )

    def collection(self, name: str) -> ArtifactCollection[ArtifactT]:
        return ArtifactCollection(
            self._resolver, self.entity, self.project, name, self.type, self._artifact_of
        )

    def __repr__(self) -> str:
        return f"<ArtifactType {self.type}>"


def active_collections(resolver: Resolver, entity: str, project: str) -> list[CollectionRecord]:
    """The project's collections that are neither deleted nor renamed, by name."""
    registry = resolver.registry
    out = []
    try:
        names = registry.collections(entity, project)
    except ArtifactNotFoundError:
        return []
    for name in names:
        try:
            rec = registry.collection(entity, project, name)
        except ArtifactNotFoundError:
            continue
        if rec.state == "ACTIVE":
            out.append(rec)
    return out


def project_collections(
    resolver: Resolver,
    entity: str,
    project: str,
    type_name: str | None,
    artifact_of: ArtifactOf[ArtifactT],
) -> list[ArtifactCollection[ArtifactT]]:
    return [
        ArtifactCollection(resolver, entity, project, rec.name, rec.type, artifact_of)
        for rec in active_collections(resolver, entity, project)
        if type_name is None or rec.type == type_name
    ]


def project_types(
    resolver: Resolver, entity: str, project: str, artifact_of: ArtifactOf[ArtifactT]
) -> list[ArtifactType[ArtifactT]]:
    types = sorted({rec.type for rec in active_collections(resolver, entity, project)})
    return [ArtifactType(resolver, entity, project, t, artifact_of) for t in types]
