"""Paths of the `artifact://` file system: what a path names, and the errors it answers with.

    entity/project/name:alias/path/in/artifact     also name:vN, or a digest after the colon
    project/name:alias/...                          the configured entity
    name:alias/...                                  the configured entity and project
    "", entity, entity/project                      the namespace: entities, projects, versions

The first path component with a colon names the version; everything after it is a path inside
that version, checked like a manifest path (no `..`, no absolute paths).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.names import ArtifactRef, check_entry_path, parse_artifact_name


class ReadOnlyError(ArtifactFSError, OSError):
    """A write through `artifact://`: versions are immutable (write through a draft instead)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            errno.EROFS,
            f"artifact://{path} is read-only: log a new version (run.log_artifact, "
            "`artifactfs put`, or a draft in the mount) instead",
        )


def not_found(path: str, why: str | None = None) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, why or f"no such file or directory: artifact://{path}")


@dataclass(frozen=True)
class Location:
    """A parsed path: the namespace part or a version plus the path inside it."""

    path: str
    namespace: tuple[str, ...] = ()
    """entity[, project] for namespace paths (empty for the root)."""
    ref: ArtifactRef | None = None
    """entity/project/name:alias, defaults applied, for paths in or at a version."""
    inner: str = ""
    """The path inside the version ("" = the version root)."""


def parse(path: str, entity: str, project: str) -> Location:
    """`path` (protocol stripped) -> Location; FileNotFoundError if it can name nothing."""
    parts = [p for p in path.split("/") if p]
    at = next((i for i, p in enumerate(parts) if ":" in p), None)
    if at is None:
        if len(parts) > 2:
            raise not_found(
                path, f"artifact://{path}: name a version, as in {'/'.join(parts[:3])}:latest"
            )
        return Location(path, tuple(parts))
    if at > 2:
        raise not_found(path, f"artifact://{path}: expected entity/project/name:alias/path")
    ref = parse_artifact_name("/".join(parts[: at + 1])).with_defaults(entity, project)
    inner = "/".join(parts[at + 1 :])
    if inner:
        try:
            inner = check_entry_path(inner)
        except ValueError as e:
            raise not_found(path, str(e)) from e
    return Location(path, ref=ref, inner=inner)
