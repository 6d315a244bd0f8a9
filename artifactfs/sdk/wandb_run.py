"""Runs: the unit of lineage (spec/artifact-api-legacy-run.md).

`init()` starts a run against a registry (the embedded one unless configured), `log_artifact`
commits artifacts as the run's outputs and `use_artifact` records inputs. Both are written to
the registry at once (run record + `used_by` markers), so `logged_by()`/`used_by()` answer from
the registry, from any process, with no server. `link_artifact`, `log_model`, `use_model` and
`link_model` are W&B's registry workflow on top of those.

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
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from artifactfs.errors import (
    ArtifactNotFoundError,
    ArtifactTypeMismatchError,
    InvalidNameError,
    UsageError,
)
from artifactfs.resolver.backends.base import Progress
from artifactfs.resolver.names import check_alias, parse_artifact_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.sdk.artifact import Artifact
from artifactfs.sdk.lookup import open_resolver, resolve_name
from artifactfs.sdk.run_data import parse_config
from artifactfs.sdk.session import ResumeMode, RunSession, auto_run, current, make_current

logger = logging.getLogger(__name__)

MODEL_REGISTRY_PROJECT = "model-registry"
"""W&B's (legacy) model registry is the project `model-registry` of the run's entity."""


class Run(RunSession):
    """One execution that logs and uses artifacts. Use as a context manager or call finish()."""

    # -- outputs ---------------------------------------------------------------------------------
    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Artifact:
        """Commit an Artifact (or a file/dir/URI, wrapped in one) as this run's output.

        `latest` is always added. Logging contents identical to `latest` creates no version:
        the returned artifact is the existing `latest` version. A draft of a logged artifact
        (`new_draft()`) is logged to the collection it came from, as in W&B.
        """
        self._ensure_open("log_artifact")
        if isinstance(aliases, str):
            aliases = [aliases]
        alias_list = list(dict.fromkeys(["latest", *(aliases or [])]))
        for a in alias_list:
            if a != "latest":
                check_alias(a)
        entity, project = self.entity, self.project
        if isinstance(artifact_or_path, Artifact):
            artifact = artifact_or_path
            if artifact._record is not None:
                raise InvalidNameError(
                    f"{artifact.qualified_name} is already logged; "
                    "use link() or save() to change it"
                )
            if type is not None and type != artifact.type:
                raise ArtifactTypeMismatchError(
                    f"artifact {artifact.name} has type {artifact.type!r}, not {type!r}"
                )
            entity = artifact._entity or entity
            project = artifact._project or project
        else:
            artifact, entity, project = self._artifact_from_path(artifact_or_path, name, type)
        if tags is not None:
            artifact._pending_tags = list(tags)
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
            raise ValueError(
                f"path must be a file, a directory or a reference like s3://bucket/path: {text!r}"
            )
        return artifact, entity, project

    # -- inputs ----------------------------------------------------------------------------------
    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: Sequence[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        """Declare an input: `name[:alias|:vN]`, `project/name:...`, `entity/project/name:...`,
        a bare digest, or an Artifact (an unlogged one is logged first). Records the use.
        `use_as` is accepted and ignored (deprecated in W&B too)."""
        self._ensure_open("use_artifact")
        if isinstance(aliases, str):
            aliases = [aliases]
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
            artifact._saved_aliases = list(artifact._aliases)
        return artifact

    def _resolve(self, text: str, type_: str | None) -> VersionRecord:
        return resolve_name(self._resolver, text, type_, self.entity, self.project)

    # -- links and models (W&B's registry workflow) ----------------------------------------------
    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: Sequence[str] | None = None
    ) -> Artifact:
        """Link `artifact` (logged first if it is not) into the portfolio `target_path`
        (`name`, `project/name` or `entity/project/name`, defaults from this run); returns
        the linked version."""
        self._ensure_open("link_artifact")
        if artifact._record is None:
            self.log_artifact(artifact)
        parts = target_path.split("/")
        if len(parts) == 1:
            target_path = f"{self.entity}/{self.project}/{target_path}"
        elif len(parts) == 2:
            target_path = f"{self.entity}/{target_path}"
        return artifact.link(target_path, list(aliases or []))

    def log_model(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        aliases: Sequence[str] | None = None,
    ) -> None:
        """Log the file or directory `path` as an artifact of type `model` (W&B returns None)."""
        self.log_artifact(path, name=name, type="model", aliases=aliases)

    def use_model(self, name: str) -> str:
        """Use the model artifact `name` and download it; returns the directory, or the file
        itself when the model is one file (W&B's rule)."""
        artifact = self.use_artifact(name)
        if "model" not in artifact.type.lower():
            raise AssertionError(
                "use_model() is for 'model' artifacts: the type must contain 'model', "
                f"{artifact.name} has type {artifact.type!r}"
            )
        path = artifact.download()
        listing = os.listdir(path)
        if len(listing) == 1:
            return os.path.join(path, listing[0])
        return path

    def link_model(
        self,
        path: str | os.PathLike[str],
        registered_model_name: str,
        name: str | None = None,
        aliases: Sequence[str] | None = None,
    ) -> Artifact | None:
        """Log `path` as a model artifact (a new version of `name` unless unchanged) and link
        it into W&B's model registry collection `<entity>/model-registry/<registered name>`."""
        if len(registered_model_name.split("/")) != 1:
            raise AssertionError(
                "give only the name of the registered model, without entity or project"
            )
        type_ = "model"
        if name is not None:
            try:
                existing = self._resolve(f"{name}:latest", None)
            except ArtifactNotFoundError:
                existing = None
            if existing is not None:
                if "model" not in existing.type.lower():
                    raise AssertionError(
                        f"link_model() is for 'model' artifacts; {name} has type {existing.type!r}"
                    )
                type_ = existing.type
        artifact = self.log_artifact(path, name=name, type=type_)
        target = f"{self.entity}/{MODEL_REGISTRY_PROJECT}/{registered_model_name}"
        return self.link_artifact(artifact, target, aliases)


# -- module-level API (wandb.init / wandb.log style) -----------------------------------------------
Reinit = bool | Literal["default", "return_previous", "finish_previous", "create_new"] | None


def init(
    entity: str | None = None,
    project: str | None = None,
    name: str | None = None,
    job_type: str | None = None,
    config: Any = None,
    registry: str | None = None,
    *,
    id: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    notes: str | None = None,
    tags: Sequence[str] | None = None,
    group: str | None = None,
    mode: str | None = None,
    reinit: Reinit = None,
    resume: ResumeMode = None,
    settings: Any = None,
    allow_val_change: bool | None = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
    **ignored: Any,
) -> Run:
    """Start a run and make it the current one (`artifactfs.sdk.wandb_run`), W&B's `wandb.init`.

    W&B's arguments are accepted; those a run record can carry (job type, name, group, tags,
    notes, config) are stored, `resume`/`id` resume a stored run, `reinit` follows W&B (a run
    in progress is returned unless `reinit` is True/"finish_previous" or "create_new"), and
    the rest (`settings`, `save_code`, `sync_tensorboard`...) is accepted and has no effect.
    `registry` (ours) picks the registry; by default the configured one.
    """
    previous = current_run()
    if previous is not None:
        if reinit in (True, "finish_previous"):
            previous.finish()
        elif reinit != "create_new":
            if resume == "must":
                raise UsageError("cannot resume a run while another run is in progress")
            logger.info("init() called while run %s is in progress; returning it", previous.id)
            return previous
    if ignored:
        logger.debug("init(): ignoring %s", sorted(ignored))
    cfg = parse_config(config)
    if config_include_keys:
        cfg = {k: v for k, v in cfg.items() if k in set(config_include_keys)}
    if config_exclude_keys:
        cfg = {k: v for k, v in cfg.items() if k not in set(config_exclude_keys)}
    run = Run(
        open_resolver(registry),
        entity=entity,
        project=project,
        name=name,
        job_type=job_type,
        config=cfg or None,
        id=id,
        group=group,
        tags=tags,
        notes=notes,
        resume=resume,
        dir=dir,
        mode=mode,
        allow_val_change=allow_val_change,
    )
    make_current(run)
    return run


def current_run() -> Run | None:
    return current(Run)


def _require_run(what: str) -> Run:
    run = current_run()
    if run is None:
        raise UsageError(f"call artifactfs.init() before artifactfs.{what}()")
    return run


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the current run (if any)."""
    run = current(RunSession)
    if run is not None:
        run.finish(exit_code=exit_code, quiet=quiet)


def login(*args: Any, **kwargs: Any) -> bool:
    """W&B's `wandb.login()`: there is no server to log in to; the registry's own access
    (a directory, or S3 through boto3's credential chain) applies. Always True."""
    return True


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    _require_run("log").log(data, step=step, commit=commit)


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
) -> Artifact:
    with auto_run(Run) as run:
        return run.log_artifact(artifact_or_path, name=name, type=type, aliases=aliases, tags=tags)


def use_artifact(
    artifact_or_name: Artifact | str,
    type: str | None = None,
    aliases: Sequence[str] | None = None,
    use_as: str | None = None,
) -> Artifact:
    with auto_run(Run) as run:
        return run.use_artifact(artifact_or_name, type=type, aliases=aliases)


def log_model(
    path: str | os.PathLike[str], name: str | None = None, aliases: Sequence[str] | None = None
) -> None:
    _require_run("log_model").log_model(path, name=name, aliases=aliases)


def use_model(name: str) -> str:
    return _require_run("use_model").use_model(name)


def link_model(
    path: str | os.PathLike[str],
    registered_model_name: str,
    name: str | None = None,
    aliases: Sequence[str] | None = None,
) -> Artifact | None:
    return _require_run("link_model").link_model(
        path, registered_model_name, name=name, aliases=aliases
    )


__all__ = [
    "Run",
    "current_run",
    "finish",
    "init",
    "link_model",
    "log",
    "log_artifact",
    "log_model",
    "login",
    "use_artifact",
    "use_model",
]
