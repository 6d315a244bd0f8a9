"""Runs for the web page, read through the public `artifactfs.Api`, W&B's Run shape.

WHY the public API and not run records: a run's history, summary, state and tags are the
public Run's to define (W&B's `Api().run(path)`: `.history(pandas=False)`, `.summary`, `.config`,
`.job_type`, `.state`, `.logged_artifacts()`, `.used_artifacts()`); reading them here the way a
W&B user's script does keeps the page in step with that API. Attributes a Run does not have
are shown as absent, never an error, so an older registry or API still gets a page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from artifactfs.errors import ArtifactFSError

log = logging.getLogger(__name__)

MAX_HISTORY_ROWS = 100_000
HISTORY_SAMPLES = 1000
"""Rows asked of `Run.history()` (W&B's default is 500), the points a plot keeps anyway."""


@dataclass
class ArtifactLink:
    entity: str
    project: str
    name: str
    version: int | None
    type: str

    @property
    def label(self) -> str:
        return self.name if self.version is None else f"{self.name}:v{self.version}"


@dataclass
class RunInfo:
    entity: str
    project: str
    id: str
    name: str | None = None
    job_type: str | None = None
    state: str | None = None
    created_at: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    group: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[ArtifactLink] = field(default_factory=list)
    outputs: list[ArtifactLink] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Parts this API's Run does not provide (yet)."""


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    items = getattr(value, "items", None)
    return {str(k): v for k, v in items()} if callable(items) else {}


def _link(artifact: Any) -> ArtifactLink | None:
    """An Artifact as a link target: entity/project/collection:vN."""
    try:
        name = str(artifact.name)
        version = str(getattr(artifact, "version", "") or "")
        entity, project = artifact.entity, artifact.project
    except (ArtifactFSError, AttributeError) as e:
        log.debug("artifact without a name: %s", e)
        return None
    if not entity or not project:
        return None
    collection = name.split(":", 1)[0]
    n = int(version[1:]) if version.startswith("v") and version[1:].isdigit() else None
    return ArtifactLink(entity, project, collection, n, str(getattr(artifact, "type", "")))


def _links(run: Any, method: str, info: RunInfo) -> list[ArtifactLink]:
    fn = getattr(run, method, None)
    if not callable(fn):
        info.missing.append(method)
        return []
    found = (_link(a) for a in fn())
    return [a for a in found if a is not None]


def _history(run: Any, info: RunInfo) -> list[dict[str, Any]]:
    fn = getattr(run, "history", None)
    if not callable(fn):
        info.missing.append("history")
        return []
    try:  # W&B samples the history evenly; as many rows as a plot can show
        rows = fn(samples=HISTORY_SAMPLES, pandas=False)
    except TypeError:  # an API without W&B's keyword arguments
        rows = fn()
    out: list[dict[str, Any]] = []
    for row in rows if isinstance(rows, Iterable) else []:
        out.append(_mapping(row))
        if len(out) >= MAX_HISTORY_ROWS:
            break
    return out


def run_info(api: Any, entity: str, project: str, run_id: str) -> RunInfo:
    """Everything the run page shows; ArtifactNotFoundError for an unknown run."""
    run = api.run(f"{entity}/{project}/{run_id}")
    info = RunInfo(entity, project, str(getattr(run, "id", run_id)))
    for attr in ("name", "job_type", "state", "created_at", "notes", "group"):
        if hasattr(run, attr):
            value = getattr(run, attr)
            setattr(info, attr, None if value is None else str(value))
        elif attr in ("state",):
            info.missing.append(attr)
    info.tags = [str(t) for t in (getattr(run, "tags", None) or [])]
    info.config = _mapping(getattr(run, "config", None))
    if hasattr(run, "summary"):  # `_step`, `_runtime`...: W&B's bookkeeping, not results
        info.summary = {k: v for k, v in _mapping(run.summary).items() if not k.startswith("_")}
    else:
        info.missing.append("summary")
    info.history = _history(run, info)
    info.inputs = _links(run, "used_artifacts", info)
    info.outputs = _links(run, "logged_artifacts", info)
    return info


@dataclass
class RunSummary:
    id: str
    name: str | None
    job_type: str | None
    state: str | None
    created_at: str | None


def project_runs(api: Any, entity: str, project: str, limit: int = 200) -> list[RunSummary] | None:
    """Runs of a project, newest first; None when the API cannot list runs."""
    runs = getattr(api, "runs", None)
    if not callable(runs):
        return None
    out = []
    try:
        try:
            found = runs(f"{entity}/{project}", order="-created_at")  # W&B's `order`
        except TypeError:
            found = runs(f"{entity}/{project}")
        for run in found:
            out.append(
                RunSummary(
                    str(run.id),
                    getattr(run, "name", None),
                    getattr(run, "job_type", None),
                    getattr(run, "state", None),
                    getattr(run, "created_at", None),
                )
            )
            if len(out) >= limit:
                break
    except ArtifactFSError as e:
        log.warning("cannot list the runs of %s/%s: %s", entity, project, e)
        return None
    return out
