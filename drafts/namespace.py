"""The namespace drafts add to a mount: new entities, projects and names made for drafts.

A draft of a new name needs its entity and project to exist before the registry knows them
(`mkdir -p MOUNT/new-entity/new-project/new-name`), so they are directories of the write dir;
a project lists every collection of the registry (each has a draft) plus the new drafts on disk
that belong to the mount's registry. A mixin of DraftWorkspace, apart from workspace.py so the
lifecycle and the commits are read there.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from pathlib import Path

from artifactfs.drafts.binding import Resolvers, read_binding
from artifactfs.drafts.errors import DraftNameError
from artifactfs.drafts.view import err
from artifactfs.errors import ArtifactFSError, InvalidNameError
from artifactfs.resolver.names import check_name
from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)


class DraftNamespace:
    """Entities, projects and draft names of a write dir (see the module docstring)."""

    resolver: Resolver
    resolvers: Resolvers
    write_dir: Path
    serve_registry_only: bool

    def is_collection(self, entity: str, project: str, name: str) -> bool:
        try:
            return name in self.resolver.registry.collections(entity, project)
        except InvalidNameError:
            return False

    # -- the namespace drafts add (new entities and projects) -----------------------------------
    @staticmethod
    def check_names(*parts: str) -> None:
        """DraftNameError unless every part is a valid entity/project/name."""
        try:
            for part in parts:
                check_name(part)
        except InvalidNameError as e:
            raise DraftNameError(str(e)) from None

    def draft_names(self, entity: str, project: str) -> list[str]:
        """Names with a draft in a project: every collection, plus new drafts on disk."""
        names: dict[str, None] = {}
        try:
            names.update(dict.fromkeys(self.resolver.registry.collections(entity, project)))
        except (ArtifactFSError, OSError) as e:
            log.debug("no collections for %s/%s: %s", entity, project, e)
        with contextlib.suppress(OSError):
            for p in (self.write_dir / entity / project).iterdir():
                if not p.is_dir() or p.name in names:
                    continue
                if self.serve_registry_only and not self.resolvers.is_home(read_binding(p)):
                    continue  # another registry's draft: not part of this mount's namespace
                names[p.name] = None
        return list(names)

    def entities(self) -> list[str]:
        """Entities made for drafts (directories of the write dir)."""
        with contextlib.suppress(OSError):
            return [
                p.name
                for p in self.write_dir.iterdir()
                if p.is_dir() and not p.name.startswith(".")
            ]
        return []

    def projects(self, entity: str) -> list[str]:
        with contextlib.suppress(OSError):
            return [p.name for p in (self.write_dir / entity).iterdir() if p.is_dir()]
        return []

    def has_dir(self, *parts: str) -> bool:
        """Is there an entity (one part) or project (two parts) made for drafts?"""
        return self.write_dir.joinpath(*parts).is_dir()

    def make_dir(self, *parts: str) -> None:
        """Make an entity or project for drafts to come (EEXIST if it is there)."""
        self.check_names(*parts)
        target = self.write_dir.joinpath(*parts)
        if target.is_dir():
            raise err(errno.EEXIST, "/".join(parts))
        target.mkdir(parents=True)

    def remove_dir(self, *parts: str) -> None:
        """Remove an empty entity or project made for drafts (ENOENT, ENOTEMPTY)."""
        self.write_dir.joinpath(*parts).rmdir()
