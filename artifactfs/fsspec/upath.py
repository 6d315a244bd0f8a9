"""`UPath("artifact://entity/project/name:alias/path")`: universal_pathlib's class for our scheme.

Registered through the `universal_pathlib.implementations` entry point, so upath uses it without
warning that the scheme is "not explicitly implemented"; the file system behind it is
artifactfs.fsspec.filesystem. Only imported by upath itself (universal_pathlib is not a dependency).
"""

from __future__ import annotations

from upath import UPath


class ArtifactPath(UPath):
    """A path in an artifactfs registry, read-only like the file system it wraps."""

    __slots__ = ()
