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
from typing import Any

from artifactfs import errors

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "artifactfs.artifact",
    "ArtifactManifestEntry": "artifactfs.artifact",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'artifactfs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
