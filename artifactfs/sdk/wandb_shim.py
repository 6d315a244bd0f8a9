"""`artifactfs.install_as_wandb()`: after one call, `import wandb` anywhere gets artifactfs.

PyMySQL's `install_as_MySQLdb()` convention. Training integrations (Lightning's WandbLogger,
Transformers' WandbCallback, Ultralytics' callbacks) `import wandb` inside their own code, import
submodules (`wandb.sdk.lib.RunDisabled`, `wandb.sdk.lib.config_util`, `wandb.wandb_run.Run`), and
some ask `importlib.metadata` whether a `wandb` distribution of a recent enough version is
installed before importing anything (Lightning's `RequirementCache("wandb>=0.12.10")`). So the
call installs, first on `sys.meta_path`, one finder that

* answers `import wandb` with a small module that forwards every attribute to `artifactfs`
  (so `wandb.run`, set by `init()`, is always the current run) and carries W&B's
  `__version__` (integrations compare it);
* answers `import wandb.<sub>` from a table of W&B's module paths -> our modules, as the same
  module objects (artifactfs.module_alias); any other `wandb.<sub>` is a ModuleNotFoundError that
  names it and points to docs/MIGRATING_FROM_WANDB.md (never a second copy of one of our files);
* reports a `wandb` distribution to `importlib.metadata` (and to `pkg_resources`, which
  lightning_utilities asks first when setuptools is installed).

Nothing happens before the call: a real `wandb` installed beside artifactfs stays what
`import wandb` finds (tests/test_wandb_shim.py checks both with a real wandb in a subprocess).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from artifactfs.errors import MIGRATION_DOC, UsageError
from artifactfs.module_alias import AliasFinder

logger = logging.getLogger(__name__)

WANDB_VERSION = "0.22.0"
"""The W&B SDK version whose Python API artifactfs answers for (what `wandb.__version__` and the
`wandb` distribution report): integrations compare it against their minimum."""

MODULES = {
    "wandb.sdk": "artifactfs.sdk",
    "wandb.sdk.lib": "artifactfs.sdk.lib",
    "wandb.sdk.lib.disabled": "artifactfs.sdk.lib",
    "wandb.sdk.lib.config_util": "artifactfs.sdk.lib.config_util",
    "wandb.sdk.lib.runid": "artifactfs.sdk.util",
    "wandb.sdk.wandb_run": "artifactfs.sdk.wandb_run",
    "wandb.sdk.wandb_settings": "artifactfs.sdk.wandb_settings",
    "wandb.sdk.artifacts": "artifactfs.sdk",
    "wandb.sdk.artifacts.artifact": "artifactfs.sdk.artifact",
    "wandb.sdk.artifacts.artifact_manifest_entry": "artifactfs.sdk.artifact_entry",
    "wandb.wandb_run": "artifactfs.sdk.wandb_run",
    "wandb.util": "artifactfs.sdk.util",
    "wandb.errors": "artifactfs.errors",
    "wandb.errors.errors": "artifactfs.errors",
    "wandb.errors.term": "artifactfs.sdk.util",
    "wandb.apis": "artifactfs.sdk",
    "wandb.apis.public": "artifactfs.sdk.api",
}
"""W&B module paths that integrations and scripts import -> the module that answers them."""


def _wandb_getattr(name: str) -> Any:
    """`wandb.<name>` is `artifactfs.<name>` (artifactfs raises the error naming unsupported
    W&B names); the W&B submodules in MODULES are imported on first use, as W&B's are."""
    submodule = MODULES.get(f"wandb.{name}")
    if submodule is not None:
        return importlib.import_module(submodule)
    return getattr(_package(), name)


def _package() -> ModuleType:
    """The artifactfs package, imported before any of its submodules (as session.publish
    reaches it: importing it from here would make an import cycle)."""
    return sys.modules["artifactfs"]


def _wandb_module(spec: importlib.machinery.ModuleSpec) -> ModuleType:
    artifactfs = _package()
    module = ModuleType("wandb", artifactfs.__doc__)
    module.__spec__ = spec
    module.__path__ = []  # a package: `import wandb.sdk` asks this finder, no directory
    module.__file__ = artifactfs.__file__
    module.__version__ = WANDB_VERSION  # type: ignore[attr-defined]
    module.__getattr__ = _wandb_getattr  # type: ignore[method-assign]
    module.__dir__ = lambda: sorted(set(dir(artifactfs)) | {"__version__"})  # type: ignore[method-assign]
    return module


class _WandbLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return _wandb_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module forwards to artifactfs."""


class WandbDistribution(importlib.metadata.Distribution):
    """The `wandb` distribution `importlib.metadata` reports once install_as_wandb() ran."""

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return (
                "Metadata-Version: 2.1\nName: wandb\n"
                f"Version: {WANDB_VERSION}\n"
                "Summary: artifactfs answering for wandb (artifactfs.install_as_wandb())\n"
            )
        if filename == "top_level.txt":
            return "wandb\n"
        return None

    def locate_file(self, path: str | Any) -> Path:
        return Path(str(_package().__file__)).parent / str(path)


class WandbFinder(AliasFinder):
    """Finds `wandb` and `wandb.*` (modules and the distribution); nothing else."""

    def __init__(self) -> None:
        super().__init__(MODULES.get)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "wandb":
            return importlib.machinery.ModuleSpec("wandb", _WandbLoader(), is_package=True)
        if not fullname.startswith("wandb."):
            return None
        spec = super().find_spec(fullname, path, target)
        if spec is None:
            raise ModuleNotFoundError(
                f"artifactfs does not implement W&B's module {fullname} "
                f"(see {MIGRATION_DOC} for what is supported)",
                name=fullname,
            )
        return spec

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context | None = None
    ) -> Iterator[importlib.metadata.Distribution]:
        name = getattr(context, "name", None)
        if name is None or name.lower().replace("_", "-") == "wandb":
            yield WandbDistribution()


def installed() -> bool:
    """True once install_as_wandb() ran in this process."""
    return any(isinstance(f, WandbFinder) for f in sys.meta_path)


def install_as_wandb() -> None:
    """Make `import wandb` (anywhere, from now on) import artifactfs. Call it once, at the top of
    a training script, before anything imports wandb. Calling it again does nothing.

    Raises UsageError if a real `wandb` was already imported: modules that hold it would keep
    logging to W&B while the rest logs here, so the call refuses rather than split a run.
    """
    if installed():
        return
    existing = sys.modules.get("wandb")
    if existing is not None:
        raise UsageError(
            "install_as_wandb() must run before anything imports wandb: the real wandb "
            f"({getattr(existing, '__file__', '?')}) is already imported"
        )
    sys.meta_path.insert(0, WandbFinder())
    _register_with_pkg_resources()
    logger.debug("install_as_wandb(): `import wandb` now imports artifactfs")


def _register_with_pkg_resources() -> None:
    """Tell pkg_resources (when something already imported it) about the distribution too:
    `pkg_resources.require("wandb>=...")` reads its own working set, not importlib.metadata."""
    pkg_resources = sys.modules.get("pkg_resources")
    if pkg_resources is None:
        return
    dist = pkg_resources.Distribution(
        project_name="wandb", version=WANDB_VERSION, location=str(Path(__file__).parent)
    )
    pkg_resources.working_set.add(dist, replace=True)
