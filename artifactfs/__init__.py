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
from typing import TYPE_CHECKING, Any

from artifactfs import errors
from artifactfs.sdk.preinit import PreInit

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and editors
    from artifactfs.errors import *  # noqa: F403
    from artifactfs.sdk.api import Api as Api
    from artifactfs.sdk.artifact import Artifact as Artifact
    from artifactfs.sdk.artifact_entry import ArtifactManifestEntry as ArtifactManifestEntry
    from artifactfs.sdk.table import Table as Table
    from artifactfs.sdk.wandb_run import Run as Run
    from artifactfs.sdk.wandb_run import finish as finish
    from artifactfs.sdk.wandb_run import init as init
    from artifactfs.sdk.wandb_run import link_model as link_model
    from artifactfs.sdk.wandb_run import log as log
    from artifactfs.sdk.wandb_run import log_artifact as log_artifact
    from artifactfs.sdk.wandb_run import log_model as log_model
    from artifactfs.sdk.wandb_run import login as login
    from artifactfs.sdk.wandb_run import use_artifact as use_artifact
    from artifactfs.sdk.wandb_run import use_model as use_model
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
            raise AttributeError(f"module 'artifactfs' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
