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
    """The deadline of one backend operation, in seconds: a request with its retries and
    backoff fails within it (`request_budget`), and the mount answers within it (EIO for data,
    the last good listing for names)."""
    retries: int = 5
    """The most attempts one request may take; fewer when they would not fit `timeout`."""
    gc_grace: float = 86400.0
    """Seconds an unreferenced object must have existed before `artifactfs gc` may remove it;
    commits refresh older objects they reuse (docs/SEMANTICS.md, garbage collection)."""
    unverified_ranges: bool = False
    """Opt-out: serve ranged reads of big entries that have no block digests (logged by W&B or
    an older artifactfs) block by block, unverified, instead of fetching and verifying the
    whole entry first (cache/blockdigests.py; docs/SEMANTICS.md, integrity)."""

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
    "ARTIFACTFS_GC_GRACE": "gc_grace",
    "ARTIFACTFS_UNVERIFIED_RANGES": "unverified_ranges",
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

MAX_BACKOFF = 20.0
"""botocore's cap on one retry's backoff (standard mode); urllib3's is larger but its factor
smaller, so the botocore curve bounds both."""


@dataclass(frozen=True)
class RequestBudget:
    """How one backend request spends the deadline: at most `attempts` tries, each connecting
    within `connect` and waiting at most `read` for any byte, with exponential backoff between
    tries, and a wall-clock `total` for everything (bodies that trickle included)."""

    deadline: float
    attempts: int
    connect: float
    read: float

    @property
    def backoff(self) -> float:
        """The worst case of the sleeps between attempts (`backoff_sum`)."""
        return backoff_sum(self.attempts)

    @property
    def total(self) -> float:
        """The worst case of the whole request: every attempt timing out, every backoff."""
        return self.attempts * (self.connect + self.read) + self.backoff


def backoff_sum(attempts: int) -> float:
    """Worst-case total sleep between `attempts` tries: random x 2^(k-1) after try k, capped
    (botocore's standard retry mode; urllib3's 0.2 x 2^k is smaller)."""
    return sum(min(2.0 ** (k - 1), MAX_BACKOFF) for k in range(1, attempts))


def request_budget(timeout: float, retries: int) -> RequestBudget:
    """Fit attempts x (connect + read) + backoff into 90% of `timeout` (the rest is for the work
    around a request), keeping each try's read timeout at least max(1 s, timeout / 5): a hung
    server must cost one deadline, not retries x timeouts. Fewer attempts are used when the
    configured ones would not fit (a 4 s deadline gets one attempt, 30 s gets three)."""
    timeout = max(float(timeout), 0.5)
    usable = 0.9 * timeout
    min_read = min(max(1.0, timeout / 5), usable / 1.5)
    for attempts in range(max(1, int(retries)), 0, -1):
        per_try = (usable - backoff_sum(attempts)) / attempts
        connect = min(2.0, per_try / 3)
        if per_try - connect >= min_read or attempts == 1:
            return RequestBudget(timeout, attempts, connect, max(per_try - connect, 0.1))
    raise AssertionError("unreachable")


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
        if "bool" in kind:
            if str(value).strip().lower() not in (
                "1",
                "true",
                "yes",
                "on",
                "0",
                "false",
                "no",
                "off",
                "",
            ):
                raise ValueError("use true or false")
            return str(value).strip().lower() in ("1", "true", "yes", "on")
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
