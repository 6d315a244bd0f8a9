"""The run session: a run's own state apart from its artifacts, and which run is current.

A `RunSession` is what a run is before it touches an artifact: its identity (entity, project,
id, name, job type, group, tags, notes), its config, summary and history (run_data.py), its
record in the registry (resolver/runs.py: compare-and-swap record, create-only history chunks),
and finishing. `Run` (run.py) adds the artifact side (log_artifact, use_artifact...). The split
follows the imports: `Artifact.save()` of an unlogged artifact must log it with the current run,
or else with a short-lived automatic one (W&B behaviour), so the artifact needs a run while
`Run` needs `Artifact`. This module sits below both, so the artifact logs itself through a
session without importing run.py.

Runs still open when the interpreter exits are finished then (W&B does the same), as `failed`
when an exception ended the program.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import string
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

from artifactfs.errors import ArtifactFSError, InvalidNameError, PreconditionFailedError, UsageError
from artifactfs.resolver.names import check_name
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.registry.runs import RunStore
from artifactfs.resolver.resolver import Resolver
from artifactfs.sdk.lookup import open_resolver
from artifactfs.sdk.preinit import PreInit
from artifactfs.sdk.run_data import History, RunConfig, Summary

log = logging.getLogger(__name__)

_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
ResumeMode = bool | Literal["allow", "never", "must", "auto"] | None

_current: RunSession | None = None
_live: weakref.WeakSet[RunSession] = weakref.WeakSet()
_failed = False
S = TypeVar("S", bound="RunSession")


def _new_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


def check_label(value: str | None, what: str) -> str | None:
    """Free-text run labels (job type, name, group, tags): W&B allows spaces and most
    characters; they never become keys, so only non-strings and control characters are
    refused."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise InvalidNameError(f"invalid {what} {value!r}: use a non-empty string (<= 256 chars)")
    if any(ord(c) < 32 for c in value):
        raise InvalidNameError(f"invalid {what} {value!r}: control characters are not allowed")
    return value


class RunSession:
    """One execution: identity, config, summary, history and registry record. Use as a context
    manager or call finish(). Creating one writes (or, resuming, re-reads) its record at once."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        entity: str | None = None,
        project: str | None = None,
        name: str | None = None,
        job_type: str | None = None,
        config: Any = None,
        id: str | None = None,
        group: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        resume: ResumeMode = None,
        dir: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        allow_val_change: bool | None = None,
    ) -> None:
        self._resolver = resolver
        cfg = resolver.config
        self.entity = check_name(entity or cfg.entity, "entity")
        self.project = check_name(project or cfg.project, "project")
        self.id = check_name(id, "run id") if id else _new_run_id()
        self.job_type = check_label(job_type, "job_type")
        self.mode = mode or "online"
        self._dir_base = Path(dir or os.environ.get("WANDB_DIR") or ".")
        self._finished = False
        self._lock = threading.RLock()
        self._store = RunStore(resolver.registry.store)
        labels = [check_label(t, "tag") for t in tags or []]
        self._record = self._open_record(
            RunRecord(
                id=self.id,
                entity=self.entity,
                project=self.project,
                name=check_label(name, "run name") or self.id,
                job_type=self.job_type,
                group=check_label(group, "group"),
                tags=[t for t in labels if t],
                notes=notes,
                state="running",
            ),
            resume,
        )
        self.summary = Summary(self._record.summary)
        self.config = RunConfig(self._config_changed)
        self.config._load(self._record.config)
        last_step = self.summary.get("_step")
        self._history = History(
            self.summary,
            start_step=int(last_step) + 1 if isinstance(last_step, int) else 0,
            runtime_base=float(self.summary.get("_runtime") or 0.0),
        )
        if config is not None:
            self.config.update(config, allow_val_change=allow_val_change or self.resumed)
        _live.add(self)
        _install_exit_hooks()

    def _open_record(self, fresh: RunRecord, resume: ResumeMode) -> RunRecord:
        """Create the run's record, or resume the stored one (W&B's `resume` rules: "must"
        needs it to exist, "never" needs it not to; otherwise an existing id resumes)."""
        existing = self._store.load(self.entity, self.project, self.id)
        if existing is None:
            if resume == "must":
                raise UsageError(
                    f"resume='must' but run {self.entity}/{self.project}/{self.id} does not exist"
                )
            try:
                self.resumed = False
                return self._store.create(fresh)
            except PreconditionFailedError:
                existing = self._store.load(self.entity, self.project, self.id)
                if existing is None:
                    raise
        if resume == "never":
            raise UsageError(
                f"resume='never' but run {self.entity}/{self.project}/{self.id} exists"
            )
        self.resumed = True

        def reopen(rec: RunRecord) -> None:
            rec.state = "running"
            rec.exit_code = None
            if fresh.job_type:
                rec.job_type = fresh.job_type
            if fresh.name != self.id:
                rec.name = fresh.name
            for attr in ("group", "notes"):
                if getattr(fresh, attr):
                    setattr(rec, attr, getattr(fresh, attr))
            rec.tags = list(dict.fromkeys([*rec.tags, *fresh.tags]))

        return self._store.update(existing, reopen)

    # -- record writes ---------------------------------------------------------------------------
    def _update(self, change: Any) -> None:
        with self._lock:
            self._record = self._store.update(self._record, change)

    def _config_changed(self, items: dict[str, Any]) -> None:
        self._update(lambda rec: setattr(rec, "config", dict(items)))

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exit_code=1 if exc_type is not None else 0)

    def _ensure_open(self, what: str) -> None:
        if self._finished:
            raise UsageError(f"run {self.id} is finished; {what}() needs a run in progress")

    # -- history and summary ---------------------------------------------------------------------
    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """W&B's `run.log`: add a history row (or to the current one), update the summary."""
        self._ensure_open("log")
        with self._lock:
            self._history.log(data, step, commit)
            if self._history.flush_due():
                self._flush()

    @property
    def step(self) -> int:
        return self._history.step

    def _flush(self, *, final: bool = False) -> None:
        """Store buffered history rows as one chunk and the summary in the record. A failed
        write keeps the rows for the next flush and, except at finish, lets training go on."""
        with self._lock:
            rows = self._history.take(final=final)
            try:
                self._store.append_history(self.entity, self.project, self.id, rows)
            except ArtifactFSError as e:
                self._history.restore(rows)
                if final:
                    raise
                log.warning("run %s: history not stored yet (%s); will retry", self.id, e)
                return
            if rows or self.summary.dirty:
                summary = self.summary.as_dict()
                self._update(lambda rec: setattr(rec, "summary", summary))
                self.summary._clean()

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Store what is left of history and summary and mark the run finished (or failed,
        with a non-zero exit code). Idempotent."""
        global _current
        with self._lock:
            if self._finished:
                return
            self._flush(final=True)
            code = exit_code or 0

            def close(rec: RunRecord) -> None:
                rec.state = "finished" if code == 0 else "failed"
                rec.exit_code = code

            self._update(close)
            self._finished = True
        _live.discard(self)
        if _current is self:
            _current = None
            publish(None)

    # -- attributes ------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    @property
    def name(self) -> str | None:
        return self._record.name

    @name.setter
    def name(self, value: str) -> None:
        label = check_label(value, "run name")
        self._update(lambda rec: setattr(rec, "name", label))

    @property
    def group(self) -> str | None:
        return self._record.group

    @property
    def notes(self) -> str | None:
        return self._record.notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        self._update(lambda rec: setattr(rec, "notes", value))

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self._record.tags)

    @tags.setter
    def tags(self, value: Sequence[str]) -> None:
        labels = [t for t in (check_label(t, "tag") for t in value) if t]
        self._update(lambda rec: setattr(rec, "tags", labels))

    @property
    def dir(self) -> str:
        """Where W&B would keep the run's files (`<dir>/wandb/run-<id>/files`), created on use."""
        path = (self._dir_base / "wandb" / f"run-{self.id}" / "files").absolute()
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def start_time(self) -> str:
        return self._record.created_at

    @property
    def offline(self) -> bool:
        return False

    @property
    def disabled(self) -> bool:
        return self.mode == "disabled"

    @property
    def url(self) -> str | None:
        """W&B's run page; there is no server here."""
        return None

    @property
    def sweep_id(self) -> str | None:
        return None

    # -- lineage record --------------------------------------------------------------------------
    def _remember(self, kind: Literal["logged", "used"], record: VersionRecord) -> None:
        """Add `record` to the run's outputs or inputs in the registry (once)."""
        full = record.full_name
        if full in getattr(self._record, kind):
            return

        def add(rec: RunRecord) -> None:
            items = getattr(rec, kind)
            if full not in items:
                items.append(full)

        self._update(add)

    @property
    def _run_record(self) -> RunRecord:
        return self._record

    def __repr__(self) -> str:
        return f"<Run {self.path}>"


# -- the current run (wandb.run) -------------------------------------------------------------------
def current(kind: type[S]) -> S | None:
    """The current run if it is a `kind` (only `init()` makes a run current, always a Run)."""
    return _current if isinstance(_current, kind) else None


def make_current(run: RunSession | None) -> None:
    global _current
    _current = run
    publish(run)


def publish(run: RunSession | None) -> None:
    """W&B's module-level globals follow the current run: `artifactfs.run`, `.config` and
    `.summary` are plain attributes of the package, set here (as `wandb.run` is by wandb's
    init and reset by its finish). The package is always loaded when this module is."""
    package = sys.modules.get("artifactfs")
    if package is None:
        return
    package.run = run  # type: ignore[attr-defined]
    package.config = run.config if run is not None else PreInit("config")  # type: ignore[attr-defined]
    package.summary = run.summary if run is not None else PreInit("summary")  # type: ignore[attr-defined]


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


# -- finishing at exit -----------------------------------------------------------------------------
_hooks_installed = False


def _install_exit_hooks() -> None:
    """Once per process: remember an uncaught exception, finish open runs at exit."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _failed
        _failed = True
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    atexit.register(_finish_all)


def _finish_all() -> None:
    for run in list(_live):
        try:
            run.finish(exit_code=1 if _failed else 0)
        except Exception as e:  # exiting: report, never raise
            log.warning("could not finish run %s at exit: %s", run.id, e)
