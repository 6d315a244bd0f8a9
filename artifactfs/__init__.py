"""artifactfs: versioned datasets and models with a W&B-style Artifact API, mountable as a drive.

    import artifactfs as af
    run = af.init(entity="acme", project="mnist")
    art = af.Artifact("mnist", type="dataset")
    art.add_dir("data/")
    run.log_artifact(art, aliases=["best"])

Public names are imported lazily (PEP 562) so `import artifactfs.cache` or the mount process do not
pay for the whole Python API.
"""

from __future__ import annotations

import importlib
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
    from artifactfs.run import log_artifact as log_artifact
    from artifactfs.run import use_artifact as use_artifact
    from artifactfs.table import Table as Table

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "artifactfs.artifact",
    "ArtifactManifestEntry": "artifactfs.artifact_entry",
    "Table": "artifactfs.table",
    "Run": "artifactfs.run",
    "init": "artifactfs.run",
    "finish": "artifactfs.run",
    "log_artifact": "artifactfs.run",
    "use_artifact": "artifactfs.run",
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

__all__ = sorted(_EXPORTS)


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
