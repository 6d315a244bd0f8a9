"""artifactfs: versioned datasets and models with a W&B-style Artifact API, mountable as a drive.

    import artifactfs as wandb            # W&B scripts run with this one change
    run = wandb.init(entity="acme", project="mnist", config={"lr": 0.1})
    art = wandb.Artifact("mnist", type="dataset")
    art.add_dir("data/")
    run.log_artifact(art, aliases=["best"])
    wandb.log({"loss": 0.5})
    wandb.finish()

Public names are imported lazily (PEP 562) so `import artifactfs.cache` or the mount process do not
pay for the whole Python API.

W&B's module-level state lives here as in `wandb`: `artifactfs.run` is the current run (None
before `init()` and after `finish()`), `artifactfs.config` and `artifactfs.summary` are the
current run's config and summary (objects that ask for `init()` before it). They are plain
module attributes that `init()` and `finish()` set (session.publish), as W&B's are; the
modules behind them have other names (`artifactfs.sdk.wandb_run`, `artifactfs.settings`), so no
attribute shadows a submodule.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from artifactfs import errors
from artifactfs.module_alias import AliasFinder, table_lookup
from artifactfs.sdk.preinit import PreInit

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and editors
    from artifactfs.errors import *  # noqa: F403
    from artifactfs.sdk.api import Api as Api
    from artifactfs.sdk.artifact import Artifact as Artifact
    from artifactfs.sdk.artifact_entry import ArtifactManifestEntry as ArtifactManifestEntry
    from artifactfs.sdk.table import Table as Table
    from artifactfs.sdk.util import require as require
    from artifactfs.sdk.util import termerror as termerror
    from artifactfs.sdk.util import termlog as termlog
    from artifactfs.sdk.util import termwarn as termwarn
    from artifactfs.sdk.wandb_run import Run as Run
    from artifactfs.sdk.wandb_run import define_metric as define_metric
    from artifactfs.sdk.wandb_run import finish as finish
    from artifactfs.sdk.wandb_run import init as init
    from artifactfs.sdk.wandb_run import link_model as link_model
    from artifactfs.sdk.wandb_run import log as log
    from artifactfs.sdk.wandb_run import log_artifact as log_artifact
    from artifactfs.sdk.wandb_run import log_model as log_model
    from artifactfs.sdk.wandb_run import login as login
    from artifactfs.sdk.wandb_run import use_artifact as use_artifact
    from artifactfs.sdk.wandb_run import use_model as use_model
    from artifactfs.sdk.wandb_settings import Settings as Settings
    from artifactfs.sdk.wandb_shim import install_as_wandb as install_as_wandb
    from artifactfs.settings import Config as Config
    from artifactfs.settings import load_config as load_config

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "artifactfs.sdk.artifact",
    "ArtifactManifestEntry": "artifactfs.sdk.artifact_entry",
    "Table": "artifactfs.sdk.table",
    "Run": "artifactfs.sdk.wandb_run",
    "init": "artifactfs.sdk.wandb_run",
    "finish": "artifactfs.sdk.wandb_run",
    "login": "artifactfs.sdk.wandb_run",
    "log": "artifactfs.sdk.wandb_run",
    "log_artifact": "artifactfs.sdk.wandb_run",
    "use_artifact": "artifactfs.sdk.wandb_run",
    "log_model": "artifactfs.sdk.wandb_run",
    "use_model": "artifactfs.sdk.wandb_run",
    "link_model": "artifactfs.sdk.wandb_run",
    "Api": "artifactfs.sdk.api",
    "define_metric": "artifactfs.sdk.wandb_run",
    "install_as_wandb": "artifactfs.sdk.wandb_shim",
    "Settings": "artifactfs.sdk.wandb_settings",
    "termlog": "artifactfs.sdk.util",
    "termwarn": "artifactfs.sdk.util",
    "termerror": "artifactfs.sdk.util",
    "require": "artifactfs.sdk.util",
    "Config": "artifactfs.settings",
    "load_config": "artifactfs.settings",
}
_ERRORS = [
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, Exception)
]
_EXPORTS.update({name: "artifactfs.errors" for name in _ERRORS})

__all__ = sorted([*_EXPORTS, "config", "run", "summary"])

_SUBMODULES = {
    "util": "artifactfs.sdk.util",
    "apis": "artifactfs.sdk",
    "wandb_run": "artifactfs.sdk.wandb_run",
}
"""W&B's submodules scripts reach as attributes (`wandb.util.generate_id()`)."""

_UNSUPPORTED = {
    "watch": "gradient and parameter histograms are W&B media, not stored here",
    "unwatch": "wandb.watch is not supported",
    "save": "run files live on W&B's server; log them in an Artifact instead",
    "restore": "run files live on W&B's server; use an Artifact instead",
    "plot": "W&B's custom charts need its web app; log a Table instead",
    "Image": "media types are not supported; log files in an Artifact",
    "Audio": "media types are not supported; log files in an Artifact",
    "Video": "media types are not supported; log files in an Artifact",
    "Html": "media types are not supported; log files in an Artifact",
    "Histogram": "media types are not supported; log the values or a Table",
    "Object3D": "media types are not supported; log files in an Artifact",
    "Molecule": "media types are not supported; log files in an Artifact",
    "sweep": "sweeps need W&B's sweep server",
    "agent": "sweeps need W&B's sweep server",
    "alert": "alerts need W&B's server",
}
"""W&B names we know and do not implement, with the reason the error gives."""

_LEGACY_MODULES = {
    **{
        f"artifactfs.{name}": f"artifactfs.sdk.{name}"
        for name in [
            "api",
            "artifact",
            "artifact_content",
            "artifact_core",
            "artifact_entry",
            "session",
            "wandb_run",
            "run_data",
            "public_run",
            "public_collections",
            "run_filters",
            "lookup",
            "table",
            "preinit",
        ]
    },
    "artifactfs.fsspec_fs": "artifactfs.fsspec.filesystem",
    "artifactfs.fsspec_file": "artifactfs.fsspec.open_file",
    "artifactfs.fsspec_paths": "artifactfs.fsspec.paths",
    "artifactfs.upath_artifact": "artifactfs.fsspec.upath",
}
"""Import paths from before the SDK and fsspec modules moved into rooms, kept working (entry
points installed by older versions name `artifactfs.fsspec_fs`), as the same module objects."""

if not any(isinstance(f, AliasFinder) and f.lookup == _LEGACY_MODULES.get for f in sys.meta_path):
    sys.meta_path.append(AliasFinder(table_lookup(_LEGACY_MODULES)))


run: Any = None
"""The current run (W&B's `wandb.run`): set by `init()`, None again after `finish()`."""
config: Any = PreInit("config")
"""The current run's config (W&B's `wandb.config`)."""
summary: Any = PreInit("summary")
"""The current run's summary (W&B's `wandb.summary`)."""


if not TYPE_CHECKING:  # type checkers see the imports above, so a misspelt name is an error

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            if name in _SUBMODULES:
                return importlib.import_module(_SUBMODULES[name])
            raise _missing(name)
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def _missing(name: str) -> AttributeError:
    """The error for a name we lack: an AttributeError (so `hasattr` probes answer False) that
    names it and, for W&B's names, says why and where the migration guide is."""
    if name.startswith("__"):
        return AttributeError(f"module 'artifactfs' has no attribute {name!r}")
    reason = _UNSUPPORTED.get(name, "not part of artifactfs's W&B API")
    return errors.NotSupportedAttributeError(
        f"artifactfs does not implement wandb.{name} ({reason}); see {errors.MIGRATION_DOC}"
    )


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
