"""Runs: the unit of lineage (spec/artifact-api-legacy-run.md).

`init()` starts a run against a registry (the embedded one unless configured), `log_artifact`
commits artifacts as the run's outputs and `use_artifact` records inputs. Both are written to
the registry at once (run record + `used_by` markers), so `logged_by()`/`used_by()` answer from
the registry, from any process, with no server.

`Run` is a `RunSession` (session.py: identity, config, record, finish, the current run) plus the
artifact side of a run; its artifact methods (and W&B's log_model/use_model/link_model) belong
here. So do the module-level functions acting on the current Run, W&B's `wandb.init()`,
`wandb.finish()`, `wandb.log_artifact()`, `wandb.use_artifact()`: this is the top of the
Python API, nothing in the package below imports it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from artifactfs.artifact import Artifact
from artifactfs.errors import ArtifactTypeMismatchError, InvalidNameError
from artifactfs.lookup import open_resolver, resolve_name
from artifactfs.resolver.backends.base import Progress
from artifactfs.resolver.names import check_alias, parse_artifact_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.session import RunSession, auto_run, current, make_current

log = logging.getLogger(__name__)


class Run(RunSession):
    """One execution that logs and uses artifacts. Use as a context manager or call finish()."""

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
        artifact._log_by(self, entity, project, alias_list, progress)
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
    run = Run(
        open_resolver(registry),
        entity=entity,
        project=project,
        name=name,
        job_type=job_type,
        config=config,
        id=id,
    )
    make_current(run)
    return run


def finish() -> None:
    run = current(RunSession)
    if run is not None:
        run.finish()


def current_run() -> Run | None:
    return current(Run)


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
) -> Artifact:
    with auto_run(Run) as run:
        return run.log_artifact(artifact_or_path, name=name, type=type, aliases=aliases)


def use_artifact(
    artifact_or_name: Artifact | str,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
) -> Artifact:
    with auto_run(Run) as run:
        return run.use_artifact(artifact_or_name, type=type, aliases=aliases)


__all__ = [
    "Run",
    "current_run",
    "finish",
    "init",
    "log_artifact",
    "use_artifact",
]
