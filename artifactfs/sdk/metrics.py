"""W&B's `run.define_metric`: what a logged key's summary holds and which step it is plotted by.

Both change stored data, so they are implemented, not ignored (checked against wandb 0.31
offline): `summary="max"` (or a comma list of `min,max,mean,first,last,best`) makes the key's
summary a dict `{"max": ...}`, `summary="none"` keeps the key out of the summary, and a
`step_metric` with `step_sync` (the default) writes the step metric's last value into every
row that logs a matching key without it. Names match exactly or as a glob (`"val/*"`, `"*"`).
`hidden` and `goal` are kept on the Metric (W&B's UI reads them; they change no data).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Protocol

SUMMARY_KINDS = ("min", "max", "mean", "first", "last", "best", "none", "copy")


@dataclass
class Metric:
    """One definition, as W&B's `wandb_metric.Metric` reads."""

    name: str
    step_metric: str | None = None
    step_sync: bool | None = None
    hidden: bool | None = None
    summary: str | None = None
    goal: str | None = None

    @classmethod
    def of(
        cls,
        name: str,
        step_metric: str | Metric | None,
        step_sync: bool | None,
        hidden: bool | None,
        summary: str | None,
        goal: str | None,
    ) -> Metric:
        """From `define_metric()`'s arguments: a Metric as step_metric names its metric, and
        step_sync defaults to True when there is a step metric (W&B's defaults)."""
        step = step_metric.name if isinstance(step_metric, Metric) else step_metric
        if step is not None and step_sync is None:
            step_sync = True
        return cls(name, step, step_sync, hidden, summary, goal)

    def summary_kinds(self) -> list[str]:
        return [k.strip() for k in (self.summary or "").split(",") if k.strip()]

    def matches(self, key: str) -> bool:
        return key == self.name or ("*" in self.name and fnmatch.fnmatchcase(key, self.name))


class SummaryItems(Protocol):
    """What the definitions need of a run summary (run_data.Summary)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...


class MetricDefinitions:
    """The run's definitions, applied to each history row as it is committed."""

    def __init__(self) -> None:
        self._metrics: list[Metric] = []
        self._last: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    def define(self, metric: Metric) -> Metric:
        for kind in metric.summary_kinds():
            if kind not in SUMMARY_KINDS:
                raise ValueError(f"invalid summary {kind!r}: use {', '.join(SUMMARY_KINDS)}")
        if metric.goal not in (None, "minimize", "maximize"):
            raise ValueError(f"invalid goal {metric.goal!r}: use 'minimize' or 'maximize'")
        if not metric.name or not isinstance(metric.name, str):
            raise ValueError("define_metric() needs a metric name")
        self._metrics = [m for m in self._metrics if m.name != metric.name] + [metric]
        return metric

    def _find(self, key: str) -> Metric | None:
        exact = [m for m in self._metrics if m.name == key]
        if exact:
            return exact[-1]
        globbed = [m for m in self._metrics if m.matches(key)]
        return globbed[-1] if globbed else None

    def fill_steps(self, row: dict[str, Any]) -> None:
        """step_sync: add the step metric's last value to rows that lack it."""
        for key in list(row):
            metric = self._find(key)
            if metric is None or not metric.step_metric or metric.step_sync is False:
                continue
            step = metric.step_metric
            if step not in row and step in self._last:
                row[step] = self._last[step]
        self._last.update({k: v for k, v in row.items() if not k.startswith("_")})

    def update_summary(self, summary: SummaryItems, row: dict[str, Any]) -> None:
        """W&B's summary of a committed row under the definitions."""
        for key, value in row.items():
            metric = None if key.startswith("_") else self._find(key)
            kinds = metric.summary_kinds() if metric else []
            if not kinds or kinds == ["copy"]:
                summary[key] = value
                continue
            if "none" in kinds:
                continue
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            previous = summary.get(key)
            old = dict(previous) if isinstance(previous, dict) else {}
            new: dict[str, Any] = {}
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            for kind in kinds:
                if kind == "last":
                    new["last"] = value
                elif kind == "first":
                    new["first"] = old.get("first", value)
                elif kind in ("min", "max") and number:
                    pick = min if kind == "min" else max
                    new[kind] = pick(old[kind], value) if kind in old else value
                elif kind == "mean" and number:
                    mean = old.get("mean", 0)
                    new["mean"] = mean + (value - mean) / count
                elif kind == "best" and number and metric and metric.goal:
                    pick = min if metric.goal == "minimize" else max
                    new["best"] = pick(old["best"], value) if "best" in old else value
            summary[key] = {**old, **new}
