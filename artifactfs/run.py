"""Runs: the unit of lineage (spec/artifact-api-legacy-run.md).

`init()` starts a run against a registry (the embedded one unless configured), `log_artifact`
commits artifacts as the run's outputs and `use_artifact` records inputs. Both are written to
the registry at once (run record + `used_by` markers), so `logged_by()`/`used_by()` answer from
the registry, from any process, with no server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import string
from collections.abc import Iterator, Sequence
from typing import Any

from artifactfs.artifact import Artifact
from artifactfs.errors import ArtifactTypeMismatchError, InvalidNameError
from artifactfs.lookup import open_resolver, resolve_name
from artifactfs.resolver.backends.base import Progress
from artifactfs.resolver.names import check_alias, check_name, parse_artifact_name
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.resolver import Resolver

log = logging.getLogger(__name__)

_current: Run | None = None
_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits


def _new_run_id() -> str:
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(8))


class Run:
    """One execution that logs and uses artifacts. Use as a context manager or call finish()."""

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
    def __enter__(self) -> Run:
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

    # -- outputs ---------------------------------------------------------------------------------
    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Artifact:
        """Commit an Artifact (or a file/dir/URI, wrapped in one) as this run's output.

        `latest` is always added. Logging contents identical to `latest` creates no version:
        the returned artifact is the existing `latest` version.
        """
        alias_list = list(dict.fromkeys(["latest", *(aliases or [])]))
        for a in alias_list:
            if a != "latest":
                check_alias(a)
        entity, project = self.entity, self.project
        if isinstance(artifact_or_path, Artifact):
            artifact = artifact_or_path
            if artifact._record is not None:
                raise InvalidNameError(
                    f"{artifact.qualified_name}:{artifact.version} is already logged; "
                    "use link() or save() to change it"
                )
            if type is not None and type != artifact.type:
                raise ArtifactTypeMismatchError(
                    f"artifact {artifact.name} has type {artifact.type!r}, not {type!r}"
                )
        else:
            artifact, entity, project = self._artifact_from_path(artifact_or_path, name, type)
        registry = self._resolver.registry
        record = registry.commit(
            entity,
            project,
            artifact._name,
            artifact.type,
            artifact.manifest,
            description=artifact.description,
            metadata=artifact.metadata,
            aliases=alias_list,
            run_id=self.id,
            progress=progress,
        )
        artifact._attach(record, self._resolver)
        if record.logged_by == self.id:
            self._remember("logged", record)
        else:
            log.info("%s is unchanged; logged nothing new", record.full_name)
        return artifact

    def _artifact_from_path(
        self, path: str | os.PathLike[str], name: str | None, type_: str | None
    ) -> tuple[Artifact, str, str]:
        """W&B: default name `run-<id>-<basename>`, default type `unspecified`."""
        text = os.fspath(path)
        entity, project = self.entity, self.project
        if name:
            ref = parse_artifact_name(name)
            art_name = ref.name
            entity, project = ref.entity or entity, ref.project or project
        else:
            base = os.path.basename(text.rstrip("/")) or "artifact"
            art_name = re.sub(r"[^A-Za-z0-9_\-.]", "-", f"run-{self.id}-{base}")[:128]
        artifact = Artifact(art_name, type_ or "unspecified")
        if "://" in text:
            artifact.add_reference(text)
        elif os.path.isdir(text):
            artifact.add_dir(text)
        elif os.path.isfile(text):
            artifact.add_file(text)
        else:
            raise FileNotFoundError(f"no such file or directory: {text!r}")
        return artifact, entity, project

    # -- inputs ----------------------------------------------------------------------------------
    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
    ) -> Artifact:
        """Declare an input: `name[:alias|:vN]`, `project/name:...`, `entity/project/name:...`,
        a bare digest, or an Artifact (an unlogged one is logged first). Records the use."""
        for a in aliases or []:
            check_alias(a)
        if isinstance(artifact_or_name, Artifact):
            artifact = artifact_or_name
            if artifact._record is None:
                self.log_artifact(artifact)
            if type is not None and artifact.type != type:
                raise ArtifactTypeMismatchError(
                    f"{artifact.name} has type {artifact.type!r}, not {type!r}"
                )
            record = artifact._record
            assert record is not None
        else:
            record = self._resolve(artifact_or_name, type)
            artifact = Artifact._from_record(record, self._resolver)
        registry = self._resolver.registry
        for a in aliases or []:
            registry.set_alias(record, a)
        registry.record_use(record, self._record)
        self._remember("used", record)
        if aliases:
            artifact._aliases = registry.version_aliases(record)
        return artifact

    def _resolve(self, text: str, type_: str | None) -> VersionRecord:
        return resolve_name(self._resolver, text, type_, self.entity, self.project)

    def _remember(self, kind: str, record: VersionRecord) -> None:
        items = getattr(self._record, kind)
        if record.full_name not in items:
            items.append(record.full_name)
            self._resolver.registry.save_run(self._record)

    def __repr__(self) -> str:
        return f"<Run {self.path}>"


# -- module-level API (wandb.init / wandb.log_artifact style) ------------------------------------
def init(
    entity: str | None = None,
    project: str | None = None,
    name: str | None = None,
    job_type: str | None = None,
    config: dict[str, Any] | None = None,
    registry: str | None = None,
    *,
    id: str | None = None,
) -> Run:
    """Start a run and make it the current one (module-level log_artifact/use_artifact)."""
    global _current
    run = Run(
        open_resolver(registry),
        entity=entity,
        project=project,
        name=name,
        job_type=job_type,
        config=config,
        id=id,
    )
    _current = run
    return run


def finish() -> None:
    if _current is not None:
        _current.finish()


def current_run() -> Run | None:
    return _current


@contextlib.contextmanager
def _auto_run(project: str | None = None) -> Iterator[Run]:
    """The current run, or a short-lived run of job type `auto` (W&B's save() behaviour)."""
    if _current is not None and (project is None or project == _current.project):
        yield _current
        return
    run = Run(open_resolver(), project=project, job_type="auto")
    try:
        yield run
    finally:
        run.finish()


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
) -> Artifact:
    with _auto_run() as run:
        return run.log_artifact(artifact_or_path, name=name, type=type, aliases=aliases)


def use_artifact(
    artifact_or_name: Artifact | str,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
) -> Artifact:
    with _auto_run() as run:
        return run.use_artifact(artifact_or_name, type=type, aliases=aliases)


__all__ = [
    "Run",
    "current_run",
    "finish",
    "init",
    "log_artifact",
    "use_artifact",
]
