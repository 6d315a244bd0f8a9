"""A run's own data as W&B shapes it: config, summary and the history rows of `run.log()`.

These are plain in-memory objects with W&B's semantics; the session (session.py) persists them:
config and summary into the run record (compare-and-swap), history rows as create-only chunks
(resolver/runs.py) flushed every `FLUSH_ROWS` rows or `FLUSH_SECONDS` seconds and at finish.

- `RunConfig` is W&B's `wandb.config`: attribute and item access, `update(d,
  allow_val_change=)`, keys without leading dashes, and changing a key's value raises unless
  `allow_val_change=True`.
- `Summary` is `run.summary`: the last value logged for each key unless set by hand.
- `History` turns `log(data, step=, commit=)` calls into rows with `_step`, `_runtime` and
  `_timestamp`, the way W&B does: a call without `step` or `commit` is one row; `commit=False`
  accumulates into the current row; an explicit `step` keeps the row open until a later step;
  a step lower than the current one is ignored with a warning.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from artifactfs.errors import ConfigError

log = logging.getLogger(__name__)

FLUSH_ROWS = 1000
FLUSH_SECONDS = 30.0


def json_friendly(value: Any) -> Any:
    """What a value is stored as: JSON types as they are, numpy/torch scalars and arrays as
    Python numbers and lists, objects with W&B's `json_encode()` (artifacts) by that, the
    rest by `str()`. NaN and infinities stay floats (Python's json writes them)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_friendly(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_friendly(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    for method in ("json_encode", "tolist", "item"):  # Artifact, ndarray/tensor, numpy scalar
        fn = getattr(value, method, None)
        if callable(fn):
            try:
                return json_friendly(fn())
            except (TypeError, ValueError, RuntimeError):
                continue
    return str(value)


def parse_config(source: Any) -> dict[str, Any]:
    """W&B's accepted config sources: a mapping, an argparse Namespace (or any object with
    `__dict__`, such as absl flags), or the path of a YAML file."""
    if source is None:
        return {}
    if isinstance(source, str):
        try:
            data = yaml.safe_load(Path(source).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read config file {source}: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config file {source} does not hold a mapping")
        # W&B's config-defaults.yaml form: {key: {"value": v, "desc": ...}}
        return {
            k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in data.items()
        }
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, argparse.Namespace) or hasattr(source, "__dict__"):
        return {k: v for k, v in vars(source).items() if not k.startswith("_")}
    raise ConfigError(f"config must be a dict, a Namespace or a YAML path, not {source!r}")


class _RunItems:
    """What W&B's run config and summary share: item and attribute reads over `_items`
    (set by each subclass with object.__setattr__, since both route attribute writes to items)."""

    _items: dict[str, Any]
    _what = "run items"

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"{self._what} has no key {key!r}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def __repr__(self) -> str:
        return repr(self._items)


class RunConfig(_RunItems):
    """W&B's run config. `on_change(items)` is called after every change (to persist it)."""

    _what = "run config"

    def __init__(self, on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        object.__setattr__(self, "_items", {})
        object.__setattr__(self, "_on_change", on_change)

    # -- mapping ---------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return [k for k in self._items if not k.startswith("_")]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self._items.items() if not k.startswith("_")]

    # -- changes ---------------------------------------------------------------------------------
    def _sanitize(self, key: str, value: Any, allow_val_change: bool | None) -> tuple[str, Any]:
        key = str(key).strip("-")
        value = json_friendly(value)
        if not allow_val_change and key in self._items and self._items[key] != value:
            raise ConfigError(
                f"attempted to change config key {key!r} from {self._items[key]!r} to "
                f"{value!r}; pass allow_val_change=True to config.update() to do this"
            )
        return key, value

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(dict(self._items))

    def __setitem__(self, key: str, value: Any) -> None:
        key, value = self._sanitize(key, value, None)
        self._items[key] = value
        self._changed()

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def update(self, d: Any, allow_val_change: bool | None = None) -> None:
        parsed = parse_config(d)
        clean = dict(self._sanitize(k, v, allow_val_change) for k, v in parsed.items())
        self._items.update(clean)
        self._changed()

    def setdefaults(self, d: Mapping[str, Any]) -> None:
        for k, v in parse_config(d).items():
            if str(k).strip("-") not in self._items:
                self._items[str(k).strip("-")] = json_friendly(v)
        self._changed()

    def persist(self) -> None:
        self._changed()

    def _load(self, items: Mapping[str, Any]) -> None:
        """Set without the change check or callback (a resumed run's stored config)."""
        self._items.update(items)


class Summary(_RunItems):
    """W&B's run summary: item and attribute access, `update()`; `dirty` until persisted."""

    _what = "run summary"

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_items", dict(items or {}))
        object.__setattr__(self, "dirty", False)

    def keys(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._items.items())

    def __setitem__(self, key: str, value: Any) -> None:
        self._items[str(key)] = json_friendly(value)
        object.__setattr__(self, "dirty", True)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delitem__(self, key: str) -> None:
        del self._items[key]
        object.__setattr__(self, "dirty", True)

    def update(self, d: Mapping[str, Any]) -> None:
        for k, v in d.items():
            self[k] = v

    def _clean(self) -> None:
        object.__setattr__(self, "dirty", False)


class History:
    """Rows from `log()` calls, buffered until `flush_due()`; `take()` hands them over."""

    def __init__(self, summary: Summary, start_step: int = 0, runtime_base: float = 0.0) -> None:
        self._summary = summary
        self.step = start_step
        self._pending: dict[str, Any] | None = None
        self._rows: list[dict[str, Any]] = []
        self._start = time.monotonic() - runtime_base
        self._last_flush = time.monotonic()

    def log(self, data: Mapping[str, Any], step: int | None, commit: bool | None) -> None:
        if not isinstance(data, Mapping):
            raise TypeError("log() must be passed a dictionary")
        if any(not isinstance(k, str) for k in data):
            raise TypeError("keys passed to log() must be strings")
        if step is not None:
            if step < self.step:
                log.warning(
                    "tried to log to step %d, which is less than the current step %d; steps "
                    "must increase monotonically, so this data is ignored",
                    step,
                    self.step,
                )
                return
            if step > self.step:
                self._commit()
                self.step = step
        if self._pending is None:
            self._pending = {}
        self._pending.update({k: json_friendly(v) for k, v in data.items()})
        if (step is None and commit is None) or commit:
            self._commit()

    def _commit(self) -> None:
        """Close the current row: stamp it, buffer it, and update the summary with it."""
        if self._pending is None:
            return
        row = dict(self._pending)
        runtime = time.monotonic() - self._start
        row.update({"_step": self.step, "_runtime": runtime, "_timestamp": time.time()})
        self._rows.append(row)
        self._summary.update(row)
        self._pending = None
        self.step += 1

    def flush_due(self) -> bool:
        return bool(self._rows) and (
            len(self._rows) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_SECONDS
        )

    def take(self, *, final: bool = False) -> list[dict[str, Any]]:
        """The rows not stored yet (the open row too when `final`), emptying the buffer."""
        if final:
            self._commit()
        rows, self._rows = self._rows, []
        self._last_flush = time.monotonic()
        return rows

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Put rows back at the front (their flush failed; they are retried with the next)."""
        self._rows[:0] = rows


__all__ = ["FLUSH_ROWS", "FLUSH_SECONDS", "History", "RunConfig", "Summary", "json_friendly"]
