"""Counts for the home and project pages: projects, collections, versions and bytes.

WHY kept for a while: counting versions and bytes reads every version record of every
collection (through the registry's own TTL cache); a home page reloaded every few seconds
should not re-read them all, so the counts of a project are kept COUNTS_TTL seconds. Bytes are
the sum of the versions' sizes (what was logged; files shared between versions are stored once,
so the bucket holds less).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from artifactfs.errors import ArtifactNotFoundError
from artifactfs.ui.data import Browser

COUNTS_TTL = 30.0


@dataclass
class Counts:
    projects: int = 0
    collections: int = 0
    versions: int = 0
    bytes: int = 0

    def add(self, other: Counts) -> None:
        self.projects += other.projects
        self.collections += other.collections
        self.versions += other.versions
        self.bytes += other.bytes


@dataclass
class ProjectRow:
    entity: str
    project: str
    counts: Counts


def matches(query: str, *names: str) -> bool:
    """The filter box: every word of `query` appears in one of `names` (case-insensitive)."""
    hay = " ".join(names).lower()
    return all(word in hay for word in query.lower().split())


class Overview:
    def __init__(self, browser: Browser, ttl: float = COUNTS_TTL) -> None:
        self.browser = browser
        self.ttl = ttl
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, str], tuple[float, Counts]] = {}

    def project(self, entity: str, project: str) -> Counts:
        key = (entity, project)
        with self._lock:
            hit = self._kept.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        reg = self.browser.registry
        counts = Counts(projects=1)
        for name in reg.collections(entity, project):
            try:
                versions = reg.versions(entity, project, name)
            except ArtifactNotFoundError:  # deleted while we counted
                continue
            counts.collections += 1
            counts.versions += len(versions)
            counts.bytes += sum(v.size or 0 for v in versions)
        with self._lock:
            self._kept[key] = (time.monotonic(), counts)
        return counts

    def home(self, query: str = "") -> tuple[Counts, list[ProjectRow]]:
        """Totals over the whole registry and one row per project matching `query`."""
        total = Counts()
        rows = []
        for entity, projects in self.browser.projects_by_entity():
            for project in projects:
                counts = self.project(entity, project)
                total.add(counts)
                if matches(query, entity, project):
                    rows.append(ProjectRow(entity, project, counts))
        return total, rows
