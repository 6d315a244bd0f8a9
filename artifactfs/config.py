"""Configuration: defaults < YAML file < environment variables < explicit arguments.

The embedded default needs nothing: the registry is a directory under the user's data dir, the
cache under the user's cache dir. The file lives at `$XDG_CONFIG_HOME/artifactfs/config.yaml`
(or `$ARTIFACTFS_CONFIG`); see docs/CONFIGURATION.md for every key.

Every layer reads it (resolver, cache, mount, CLI, Python API), so it is a leaf: it imports nothing
of ours but errors.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from artifactfs.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """`"20GiB"`, `"512M"`, `"1.5G"` or a plain integer -> bytes (binary units)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"invalid size {text!r}: use a number with an optional K/M/G/T suffix")
    unit = (m.group(2) or "").upper().rstrip("B").rstrip("I")
    return int(float(m.group(1)) * _UNITS[unit])


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def _default_user() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "user"
    return re.sub(r"[^A-Za-z0-9_\-.]", "-", user) or "user"


@dataclass
class Config:
    """Everything artifactfs can be told. Paths are absolute after loading."""

    registry: str = ""
    cache_dir: Path = field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "artifactfs")
    cache_size: int = 20 << 30
    write_dir: Path = field(
        default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "artifactfs" / "drafts"
    )
    artifact_dir: Path = Path("artifacts")
    """Base of `Artifact.download()`'s default root (`<artifact_dir>/<name>:<version>`, as W&B);
    relative paths are taken from the current directory at download time."""
    entity: str = field(default_factory=_default_user)
    project: str = "uncategorized"
    metadata_ttl: float = 5.0
    s3_endpoint_url: str | None = None
    s3_profile: str | None = None
    s3_region: str | None = None
    gcs_endpoint_url: str | None = None
    timeout: float = 30.0
    retries: int = 5

    def __post_init__(self) -> None:
        if not self.registry:
            self.registry = str(_xdg("XDG_DATA_HOME", ".local/share") / "artifactfs" / "registry")

    def with_overrides(self, **overrides: Any) -> Config:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


ENV = {
    "ARTIFACTFS_REGISTRY": "registry",
    "ARTIFACTFS_CACHE_DIR": "cache_dir",
    "ARTIFACTFS_CACHE_SIZE": "cache_size",
    "ARTIFACTFS_WRITE_DIR": "write_dir",
    "ARTIFACTFS_ARTIFACT_DIR": "artifact_dir",
    "ARTIFACTFS_ENTITY": "entity",
    "ARTIFACTFS_PROJECT": "project",
    "ARTIFACTFS_METADATA_TTL": "metadata_ttl",
    "ARTIFACTFS_S3_ENDPOINT_URL": "s3_endpoint_url",
    "ARTIFACTFS_S3_PROFILE": "s3_profile",
    "ARTIFACTFS_S3_REGION": "s3_region",
    "ARTIFACTFS_GCS_ENDPOINT_URL": "gcs_endpoint_url",
    "ARTIFACTFS_TIMEOUT": "timeout",
    "ARTIFACTFS_RETRIES": "retries",
}


WANDB_ENV = {
    "WANDB_ENTITY": "entity",
    "WANDB_PROJECT": "project",
    "WANDB_ARTIFACT_DIR": "artifact_dir",
    "AWS_S3_ENDPOINT_URL": "s3_endpoint_url",
}
"""W&B's variables, honoured when no ARTIFACTFS_* variable sets the same thing, so a W&B setup
carries over: WANDB_CACHE_DIR too (our cache goes in its `artifactfs/` subdirectory), and
WANDB_DIR for runs' `run.dir`. AWS_S3_ENDPOINT_URL is what W&B's s3 handler reads."""


def config_path() -> Path:
    explicit = os.environ.get("ARTIFACTFS_CONFIG")
    if explicit:
        return Path(explicit)
    return _xdg("XDG_CONFIG_HOME", ".config") / "artifactfs" / "config.yaml"


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Config)}
    kind = str(kinds[name])
    try:
        if name in ("cache_size",):
            return parse_size(value)
        if name in ("cache_dir", "write_dir", "artifact_dir"):
            return Path(os.path.expanduser(str(value))).absolute()
        if "float" in kind:
            return float(value)
        if "int" in kind:
            return int(value)
        return None if value in (None, "") else str(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid value {value!r} for {name}: {e}") from e


def load_config(**overrides: Any) -> Config:
    """Build the effective configuration. Unknown keys in the file are an error (typos)."""
    values: dict[str, Any] = {}
    path = config_path()
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read {path}: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        known = {f.name for f in fields(Config)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
        values.update({k: _coerce(k, v) for k, v in data.items()})
    set_by_us = {name for var, name in ENV.items() if os.environ.get(var)}
    for var, name in WANDB_ENV.items():
        if os.environ.get(var) and name not in set_by_us:
            values[name] = _coerce(name, os.environ[var])
    if os.environ.get("WANDB_CACHE_DIR") and "cache_dir" not in set_by_us:
        values["cache_dir"] = _coerce(
            "cache_dir", os.path.join(os.environ["WANDB_CACHE_DIR"], "artifactfs")
        )
    for var, name in ENV.items():
        if os.environ.get(var):
            values[name] = _coerce(name, os.environ[var])
    values.update({k: _coerce(k, v) for k, v in overrides.items() if v is not None})
    return Config(**values)
