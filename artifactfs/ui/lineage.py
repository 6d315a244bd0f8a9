"""The lineage graph around one artifact version: runs and versions, a few hops out.

WHY a walk of its own: lineage is stored as facts on both sides (a version's `logged_by` run id,
`used_by` markers under the version, and each run record's `logged`/`used` names), so the
graph is a breadth-first walk over those records, each hop one or two registry reads. The walk
ignores edge direction (a dataset's other consumers, a run's other outputs, as W&B's lineage view
shows), stops after `hops` edges from the start and at `max_nodes` nodes, and says when it stopped
early. Layout is not done here (see pictures.py).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from artifactfs.errors import ArtifactFSError, ArtifactNotFoundError, InvalidNameError
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_HOPS = 2
MAX_HOPS = 8
MAX_NODES = 80


@dataclass(frozen=True)
class Node:
    """An artifact version (`kind` "artifact") or a run (`kind` "run")."""

    id: str
    kind: str
    entity: str
    project: str
    name: str
    """Collection name for an artifact, run id for a run."""
    version: int | None = None
    detail: str = ""
    """Artifact type or run job type."""
    display: str = ""
    """A run's display name (what people named it), when it has one."""

    @property
    def label(self) -> str:
        return (
            f"{self.name}:v{self.version}" if self.kind == "artifact" else self.display or self.name
        )


@dataclass
class Graph:
    start: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    """(from, to): run -> artifact for an output, artifact -> run for an input."""
    truncated: bool = False


def _artifact_node(rec: VersionRecord) -> Node:
    return Node(
        f"artifact:{rec.full_name}",
        "artifact",
        rec.entity,
        rec.project,
        rec.name,
        rec.version,
        rec.type,
    )


def _run_node(run: RunRecord) -> Node:
    return Node(
        f"run:{run.entity}/{run.project}/{run.id}",
        "run",
        run.entity,
        run.project,
        run.id,
        None,
        run.job_type or "",
        run.name or "",
    )


class _Walk:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.versions: dict[str, VersionRecord] = {}
        self.runs: dict[str, RunRecord] = {}

    def producer(self, rec: VersionRecord) -> RunRecord | None:
        """The run that logged `rec` (for a linked version, the source's run)."""
        if not rec.logged_by:
            return None
        run = self.registry.run(rec.entity, rec.project, rec.logged_by)
        if run is None and rec.link_source:
            src = rec.link_source
            run = self.registry.run(src["entity"], src["project"], rec.logged_by)
        return run

    def version(self, full_name: str) -> VersionRecord | None:
        try:
            return self.registry.resolve(parse_artifact_name(full_name))
        except (ArtifactNotFoundError, InvalidNameError):
            return None  # deleted since the run recorded it

    def neighbours(self, node: Node) -> list[tuple[Node, tuple[str, str]]]:
        out: list[tuple[Node, tuple[str, str]]] = []
        if node.kind == "artifact":
            rec = self.versions[node.id]
            run = self.producer(rec)
            if run is not None:
                n = _run_node(run)
                self.runs[n.id] = run
                out.append((n, (n.id, node.id)))
            for user in self.registry.users(rec):
                n = _run_node(user)
                self.runs[n.id] = user
                out.append((n, (node.id, n.id)))
        else:
            run = self.runs[node.id]
            for kind, names in (("logged", run.logged), ("used", run.used)):
                for full in names:
                    found = self.version(full)
                    if found is None:
                        continue
                    n = _artifact_node(found)
                    self.versions[n.id] = found
                    out.append((n, (node.id, n.id) if kind == "logged" else (n.id, node.id)))
        return out


def lineage(
    registry: Registry,
    record: VersionRecord,
    hops: int = DEFAULT_HOPS,
    max_nodes: int = MAX_NODES,
) -> Graph:
    """Runs and versions within `hops` edges of `record` (at most `max_nodes` of them)."""
    hops = max(0, min(hops, MAX_HOPS))
    walk = _Walk(registry)
    start = _artifact_node(record)
    walk.versions[start.id] = record
    graph = Graph(start.id, {start.id: start})
    queue: deque[tuple[Node, int]] = deque([(start, 0)])
    while queue:
        node, depth = queue.popleft()
        if depth >= hops:
            continue
        try:
            found = walk.neighbours(node)
        except ArtifactFSError as e:  # one unreadable record must not hide the rest
            log.warning("lineage: cannot follow %s: %s", node.id, e)
            continue
        for other, edge in found:
            if other.id not in graph.nodes:
                if len(graph.nodes) >= max_nodes:
                    graph.truncated = True
                    continue
                graph.nodes[other.id] = other
                queue.append((other, depth + 1))
            graph.edges.add(edge)
    # an edge to a node dropped at the limit has no end to draw
    graph.edges = {(a, b) for a, b in graph.edges if a in graph.nodes and b in graph.nodes}
    return graph
