"""Path routing: what a mount path names, decided from its text alone (no backend calls).

Keeping routing pure makes the rules testable without a mount and keeps every operation's
dispatch one `match` on a small set of node kinds (DESIGN §2):

    /                               Root
    /.artifactfs[/...]              Control
    /<entity>                       Entity
    /<entity>/<project>             Project
    /<e>/<p>/<name>:vN[/rel]        Version (rel "" = the version directory)
    /<e>/<p>/<name>:<alias>         Alias (a symlink to `name:vN`)
    /<e>/<p>/<name>[/...]           Draft (routed to the DraftTree; see draft_tree)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from artifactfs.fusefs.draft_tree import split_path
from artifactfs.resolver.names import version_number

CONTROL_DIR = ".artifactfs"


@dataclass(frozen=True)
class Root:
    pass


@dataclass(frozen=True)
class Control:
    rel: str


@dataclass(frozen=True)
class Entity:
    entity: str


@dataclass(frozen=True)
class Project:
    entity: str
    project: str


@dataclass(frozen=True)
class Version:
    entity: str
    project: str
    name: str
    version: int
    rel: str


@dataclass(frozen=True)
class Alias:
    entity: str
    project: str
    name: str
    alias: str


@dataclass(frozen=True)
class Draft:
    path: str


@dataclass(frozen=True)
class Invalid:
    """Something that can never exist (e.g. a path below an alias symlink)."""

    path: str


Node = Root | Control | Entity | Project | Version | Alias | Draft | Invalid


@functools.lru_cache(maxsize=8192)
def route(path: str) -> Node:
    """The node kind a mount path names (memoized: a cold read routes the same path for its
    LOOKUP and its READ; nodes are frozen, so sharing one is safe)."""
    parts = split_path(path)
    if not parts:
        return Root()
    if parts[0] == CONTROL_DIR:
        return Control("/".join(parts[1:]))
    if len(parts) == 1:
        return Entity(parts[0])
    if len(parts) == 2:
        return Project(parts[0], parts[1])
    name, colon, tag = parts[2].partition(":")
    if not colon:
        return Draft("/" + "/".join(parts))
    if not name or not tag:
        return Invalid(path)
    n = version_number(tag)
    if n is not None:
        return Version(parts[0], parts[1], name, n, "/".join(parts[3:]))
    if len(parts) > 3:
        return Invalid(path)  # the kernel follows symlinks itself; nothing lives below one
    return Alias(parts[0], parts[1], name, tag)
