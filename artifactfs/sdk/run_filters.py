"""W&B's run filters (`Api().runs(path, filters=...)`): a MongoDB-style query over run records.

W&B sends these to its server; here they are evaluated against each stored run record. Fields
use W&B's names: `jobType`, `state`, `group`, `tags`, `displayName`, `name` (the run id),
`createdAt`, `config.<key>` (also `config.<key>.value`), `summary_metrics.<key>`. Operators:
`$eq $ne $gt $gte $lt $lte $in $nin $exists $regex` and `$and $or $nor`. A field named by its
Python attribute (`job_type`, `display_name`, `created_at`) is accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from artifactfs.resolver.records import RunRecord

_MISSING = object()
_FIELDS: dict[str, Callable[[RunRecord], Any]] = {
    "name": lambda r: r.id,
    "id": lambda r: r.id,
    "displayName": lambda r: r.name,
    "display_name": lambda r: r.name,
    "jobType": lambda r: r.job_type,
    "job_type": lambda r: r.job_type,
    "state": lambda r: r.state,
    "group": lambda r: r.group,
    "tags": lambda r: r.tags,
    "createdAt": lambda r: r.created_at,
    "created_at": lambda r: r.created_at,
    "notes": lambda r: r.notes,
    "entity": lambda r: r.entity,
    "project": lambda r: r.project,
}


def _field(record: RunRecord, path: str) -> Any:
    head, _, rest = path.partition(".")
    if head == "config" and rest:
        key = rest.removesuffix(".value")
        return _dig(record.config, key)
    if head in ("summary_metrics", "summary") and rest:
        return _dig(record.summary, rest)
    getter = _FIELDS.get(path)
    return getter(record) if getter else _MISSING


def _dig(data: Mapping[str, Any], dotted: str) -> Any:
    if dotted in data:
        return data[dotted]
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _compare(value: Any, op: str, arg: Any) -> bool:
    if op == "$exists":
        return (value is not _MISSING) == bool(arg)
    if value is _MISSING:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return bool(value == arg or (isinstance(value, list) and arg in value))
    if op == "$ne":
        return not _compare(value, "$eq", arg)
    if op == "$in":
        return any(_compare(value, "$eq", a) for a in arg)
    if op == "$nin":
        return not _compare(value, "$in", arg)
    if op == "$regex":
        return isinstance(value, str) and re.search(str(arg), value) is not None
    try:
        if op == "$gt":
            return bool(value > arg)
        if op == "$gte":
            return bool(value >= arg)
        if op == "$lt":
            return bool(value < arg)
        if op == "$lte":
            return bool(value <= arg)
    except TypeError:
        return False
    raise ValueError(f"unsupported run filter operator {op!r}")


def matches(record: RunRecord, query: Mapping[str, Any] | None) -> bool:
    """Whether `record` satisfies the W&B run filter `query`."""
    for key, cond in (query or {}).items():
        if key == "$and":
            if not all(matches(record, q) for q in cond):
                return False
        elif key == "$or":
            if not any(matches(record, q) for q in cond):
                return False
        elif key == "$nor":
            if any(matches(record, q) for q in cond):
                return False
        elif key.startswith("$"):
            raise ValueError(f"unsupported run filter operator {key!r}")
        else:
            value = _field(record, key)
            if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
                if not all(_compare(value, op, arg) for op, arg in cond.items()):
                    return False
            elif not _compare(value, "$eq", cond):
                return False
    return True


def sort_runs(records: list[RunRecord], order: str) -> list[RunRecord]:
    """W&B's `order` ("+created_at", "-summary_metrics.loss"...): ascending with `+` (or no
    sign), descending with `-`; runs without the field come last either way."""
    reverse = order.startswith("-")
    field = order.lstrip("+-") or "created_at"
    if field in ("created_at", "createdAt"):
        return sorted(records, key=lambda r: (r.created_at, r.id), reverse=reverse)
    present: list[tuple[Any, RunRecord]] = []
    missing: list[tuple[Any, RunRecord]] = []
    for record in records:
        value = _field(record, field)
        (missing if value is _MISSING or value is None else present).append((value, record))

    def key(item: tuple[Any, RunRecord]) -> tuple[int, float, str]:
        value = item[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, str(value))

    present.sort(key=key, reverse=reverse)
    return [r for _, r in present] + [r for _, r in missing]
