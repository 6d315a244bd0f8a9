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
current run's config and summary. Two of those names are also submodules (`artifactfs.run`,
`artifactfs.config`); the package is a module subclass whose `run` and `config` attributes are
the W&B objects, so import them as `from artifactfs.run import init` or
`from artifactfs.config import load_config` (never `import artifactfs.config as x`, which would
give the run config view, whose unknown attributes do fall back to the module's).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from artifactfs import errors

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and editors
    from artifactfs.api import Api as Api
    from artifactfs.artifact import Artifact as Artifact
    from artifactfs.artifact_entry import ArtifactManifestEntry as ArtifactManifestEntry
    from artifactfs.config import Config as Config
    from artifactfs.config import load_config as load_config
    from artifactfs.errors import *  # noqa: F403
    from artifactfs.run import Run as Run
    from artifactfs.run import finish as finish
    from artifactfs.run import init as init
    from artifactfs.run import link_model as link_model
    from artifactfs.run import log as log
    from artifactfs.run import log_artifact as log_artifact
    from artifactfs.run import log_model as log_model
    from artifactfs.run import login as login
    from artifactfs.run import use_artifact as use_artifact
    from artifactfs.run import use_model as use_model
    from artifactfs.run_data import Summary
    from artifactfs.table import Table as Table

    summary: Summary

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "artifactfs.artifact",
    "ArtifactManifestEntry": "artifactfs.artifact_entry",
    "Table": "artifactfs.table",
    "Run": "artifactfs.run",
    "init": "artifactfs.run",
    "finish": "artifactfs.run",
    "login": "artifactfs.run",
    "log": "artifactfs.run",
    "log_artifact": "artifactfs.run",
    "use_artifact": "artifactfs.run",
    "log_model": "artifactfs.run",
    "use_model": "artifactfs.run",
    "link_model": "artifactfs.run",
    "Api": "artifactfs.api",
    "Config": "artifactfs.config",
    "load_config": "artifactfs.config",
}
_ERRORS = [
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, Exception)
]
_EXPORTS.update({name: "artifactfs.errors" for name in _ERRORS})

__all__ = sorted([*_EXPORTS, "config", "run", "summary"])


def _current_run() -> Any:
    return importlib.import_module("artifactfs.session")._current


class _PreInit:
    """What `artifactfs.config`/`summary` are before `init()`: any use says to call init()."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.UsageError(f"call artifactfs.init() before using artifactfs.{self._name}")

    __getitem__ = __setitem__ = __iter__ = __len__ = __contains__ = _refuse

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._refuse()

    def __setattr__(self, key: str, value: Any) -> None:
        self._refuse()

    def __repr__(self) -> str:
        return f"<artifactfs.{self._name}: call artifactfs.init() first>"


class _ConfigView:
    """`artifactfs.config`: the current run's config (W&B's `wandb.config`), falling back to
    the attributes of the configuration module `artifactfs.config` for names it defines."""

    def __init__(self, module: types.ModuleType) -> None:
        object.__setattr__(self, "_module", module)

    def _target(self) -> Any:
        run = _current_run()
        return run.config if run is not None else _PreInit("config")

    def __getattr__(self, key: str) -> Any:
        if key in vars(self._module):
            return getattr(self._module, key)
        return getattr(self._target(), key)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in vars(self._module):
            setattr(self._module, key, value)
        else:
            setattr(self._target(), key, value)

    def __getitem__(self, key: str) -> Any:
        return self._target()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._target()[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._target()

    def __iter__(self) -> Iterator[str]:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def __repr__(self) -> str:
        return repr(self._target())


class _Package(types.ModuleType):
    """The `artifactfs` package: `run` and `config` are W&B's globals, not the submodules the
    import system would otherwise bind to those names (it assigns them; the setters keep them
    aside)."""

    @property
    def run(self) -> Any:
        return _current_run()

    @run.setter
    def run(self, module: Any) -> None:
        self.__dict__["_run_module"] = module

    @property
    def config(self) -> Any:
        module = self.__dict__.get("_config_module") or importlib.import_module("artifactfs.config")
        return _ConfigView(module)

    @config.setter
    def config(self, module: Any) -> None:
        self.__dict__["_config_module"] = module


sys.modules[__name__].__class__ = _Package


if not TYPE_CHECKING:  # type checkers see the imports above, so a misspelt name is an error

    def __getattr__(name: str) -> Any:
        if name == "summary":  # the current run's, never cached
            run = _current_run()
            return run.summary if run is not None else _PreInit("summary")
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'artifactfs' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
