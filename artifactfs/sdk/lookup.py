"""How the Python API reaches the registry: a Resolver with no metadata cache, and user names.

`run`, `api` and `session` all open resolvers and resolve `[[entity/]project/]name[:alias|:vN]`
the same way; the two functions live here, below all three, so none of them imports another to
get at them.
"""

from __future__ import annotations

from typing import Any

from artifactfs.errors import ArtifactTypeMismatchError, InvalidNameError
from artifactfs.resolver.names import is_digest, parse_artifact_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.resolver import Resolver


def open_resolver(registry: str | None = None, **overrides: Any) -> Resolver:
    """A Resolver for the API: metadata is never cached across calls (ttl=0) because API users
    expect `use_artifact("x:latest")` to see what another process just logged."""
    return Resolver.open(registry=registry, ttl=0, **overrides)


def resolve_name(
    resolver: Resolver, text: str, type_: str | None, entity: str, project: str
) -> VersionRecord:
    """Resolve a user-facing artifact name to a version record, checking the type."""
    if not isinstance(text, str):
        raise InvalidNameError(f"invalid artifact name {text!r}")
    if is_digest(text):
        ref = parse_artifact_name(text).with_defaults(entity, project, text)
    else:
        ref = parse_artifact_name(text).with_defaults(entity, project)
    record = resolver.registry.resolve(ref)
    if type_ is not None and record.type != type_:
        raise ArtifactTypeMismatchError(
            f"{record.full_name} has type {record.type!r}, not {type_!r}"
        )
    return record
