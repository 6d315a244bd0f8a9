"""The run session: a run's own state apart from its artifacts, and which run is current.

A `RunSession` is what a run is before it touches an artifact: its identity (entity, project,
id, name, job type), its config, its record in the registry, and finishing. `Run` (run.py) adds
the artifact side (log_artifact, use_artifact). The split follows the imports: `Artifact.save()`
of an unlogged artifact must log it with the current run, or else with a short-lived automatic
one (W&B behaviour), so the artifact needs a run while `Run` needs `Artifact`. This module sits
below both, so the artifact logs itself through a session without importing run.py.

Run state that needs no artifact (run.log, summary, history, config updates) belongs here;
the module-level functions that act on the current `Run` (wandb.init/finish/...) are in run.py.
"""

from __future__ import annotations

import contextlib
import secrets
import string
from collections.abc import Iterator
from typing import Any, Literal, TypeVar

from artifactfs.lookup import open_resolver
from artifactfs.resolver.names import check_name
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.resolver import Resolver

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits

_current: RunSession | None = None
S = TypeVar("S", bound="RunSession")


def _new_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


class RunSession:
    """One execution: its identity, config and registry record. Use as a context manager or
    call finish(). Creating one writes its record to the registry at once."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        entity: str | None = None,
        project: str | None = None,
        name: str | None = None,
        job_type: str | None = None,
        config: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> None:
        self._resolver = resolver
        cfg = resolver.config
        self.entity = check_name(entity or cfg.entity, "entity")
        self.project = check_name(project or cfg.project, "project")
        self.id = check_name(id, "run id") if id else _new_run_id()
        if job_type is not None:
            check_name(job_type, "job_type")
        self.name = name or self.id
        self.job_type = job_type
        self.config = dict(config or {})
        self._record = RunRecord(
            id=self.id,
            entity=self.entity,
            project=self.project,
            name=self.name,
            job_type=job_type,
            config=self.config,
        )
        self._finished = False
        resolver.registry.save_run(self._record)

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        global _current
        if self._finished:
            return
        self._finished = True
        if _current is self:
            _current = None

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    # -- lineage record --------------------------------------------------------------------------
    def _remember(self, kind: Literal["logged", "used"], record: VersionRecord) -> None:
        """Add `record` to the run's outputs or inputs in the registry (once)."""
        items = getattr(self._record, kind)
        if record.full_name not in items:
            items.append(record.full_name)
            self._resolver.registry.save_run(self._record)

    def __repr__(self) -> str:
        return f"<Run {self.path}>"


# -- the current run (wandb.run) -------------------------------------------------------------------
def current(kind: type[S]) -> S | None:
    """The current run if it is a `kind` (only `init()` makes a run current, always a Run)."""
    return _current if isinstance(_current, kind) else None


def make_current(run: RunSession) -> None:
    global _current
    _current = run


@contextlib.contextmanager
def auto_run(kind: type[S], project: str | None = None) -> Iterator[S]:
    """The current run, or a short-lived run of job type `auto` (W&B's save() behaviour)."""
    run = current(kind)
    if run is not None and (project is None or project == run.project):
        yield run
        return
    run = kind(open_resolver(), project=project, job_type="auto")
    try:
        yield run
    finally:
        run.finish()
