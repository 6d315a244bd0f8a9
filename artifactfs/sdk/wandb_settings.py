"""W&B's `wandb.Settings`: the settings object scripts pass to `wandb.init(settings=...)`.

`init()` reads the fields that name or place a run (`mode`, `entity`, `project`, `run_id`,
`run_name`, `run_group`, `run_job_type`, `run_tags`, `run_notes`, `root_dir`) when the matching
argument is not given, as W&B does. Every other field tunes W&B's service process, console
capture, telemetry or its server connection, none of which exists here: they are kept on the
object (readable, as in W&B) and have no effect, which loses no data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RUN_FIELDS = {
    "mode": "mode",
    "entity": "entity",
    "project": "project",
    "run_id": "id",
    "run_name": "name",
    "run_group": "group",
    "run_job_type": "job_type",
    "run_tags": "tags",
    "run_notes": "notes",
    "root_dir": "dir",
}
"""Settings fields -> the `init()` argument they stand in for."""


class Settings:
    """Keyword fields, readable as attributes; unknown fields read as None (W&B's defaults)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__["_fields"] = dict(fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__dict__["_fields"].get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__["_fields"][name] = value

    def update_from_dict(self, values: Mapping[str, Any]) -> None:
        self.__dict__["_fields"].update(values)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__["_fields"])

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


def init_arguments(settings: Settings | Mapping[str, Any] | None) -> dict[str, Any]:
    """The `init()` arguments a settings object (or a plain dict, which W&B also accepts) gives."""
    if settings is None:
        return {}
    fields = settings.to_dict() if isinstance(settings, Settings) else dict(settings)
    return {arg: fields[key] for key, arg in RUN_FIELDS.items() if fields.get(key) is not None}
