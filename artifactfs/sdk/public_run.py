"""The public, read-only view of a stored run: what `Api().run()` and `Artifact.logged_by()` return.

A stored run is a registry record (resolver.records.RunRecord): identity, config, and the full
names of what it logged and used. This view answers from that record alone, in any process, with
no run in progress; it is not the live `Run` of run.py that `init()` starts.

It is apart from api.py because both sides of lineage need it: `Artifact.logged_by()` returns a
Run and `Run.logged_artifacts()` returns Artifacts. To keep the modules acyclic this view never
imports artifact.py: whoever builds one passes how a version record becomes an artifact
(`Artifact._from_record`), and the class is generic in what that returns.

It is W&B-shaped on purpose (a web UI reads runs through it): `summary`, `config`, `state`,
`tags`, `history()` (a pandas DataFrame when pandas is importable, unless `pandas=False`),
`scan_history()` (every row, lazily), `logged_artifacts()`, `used_artifacts()`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.resolver.records import RunRecord, VersionRecord
from artifactfs.resolver.resolver import Resolver

ArtifactT = TypeVar("ArtifactT")


class RunSummary(dict[str, Any]):
    """A stored run's summary: a dict, with W&B's `_json_dict` (scripts exporting runs use
    it) and attribute access."""

    @property
    def _json_dict(self) -> dict[str, Any]:
        return dict(self)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"run summary has no key {key!r}") from None


class Run(Generic[ArtifactT]):
    """A run as stored in the registry (read-only): what it logged and what it used."""

    def __init__(
        self,
        record: RunRecord,
        resolver: Resolver,
        artifact_of: Callable[[VersionRecord, Resolver], ArtifactT],
    ) -> None:
        self._record = record
        self._resolver = resolver
        self._artifact_of = artifact_of

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def storage_id(self) -> str:
        return self._record.id

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def name(self) -> str | None:
        """W&B's display name (the run id unless one was given)."""
        return self._record.name

    @property
    def display_name(self) -> str | None:
        return self._record.name

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._record.config)

    @property
    def summary(self) -> RunSummary:
        """The last value logged for each key (or what the run set by hand)."""
        return RunSummary(self._record.summary)

    @property
    def summary_metrics(self) -> dict[str, Any]:
        return dict(self._record.summary)

    @property
    def state(self) -> str:
        """running, finished or failed (W&B's states; no heartbeat service marks crashes)."""
        return self._record.state

    @property
    def tags(self) -> list[str]:
        return list(self._record.tags)

    @property
    def group(self) -> str | None:
        return self._record.group

    @property
    def notes(self) -> str | None:
        return self._record.notes

    @property
    def created_at(self) -> str:
        return self._record.created_at

    @property
    def heartbeat_at(self) -> str | None:
        return self._record.heartbeat_at

    @property
    def url(self) -> str | None:
        """W&B's run page; there is no server here."""
        return None

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    # -- history ---------------------------------------------------------------------------------
    def scan_history(
        self,
        keys: Sequence[str] | None = None,
        page_size: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every history row, in order (W&B: `keys` keeps rows holding all of them, with just
        those keys and `_step`; `min_step` inclusive, `max_step` exclusive)."""
        store = self._resolver.registry.runs
        for row in store.history(self.entity, self.project, self.id):
            step = row.get("_step")
            if isinstance(step, int):
                if min_step is not None and step < min_step:
                    continue
                if max_step is not None and step >= max_step:
                    continue
            if keys:
                if not all(k in row for k in keys):
                    continue
                row = {k: row[k] for k in ("_step", *keys) if k in row}
            yield row

    def history(
        self,
        samples: int = 500,
        keys: Sequence[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
    ) -> Any:
        """Up to `samples` rows spread evenly over the history (W&B samples too; use
        `scan_history()` for every row): a pandas DataFrame when pandas is installed and
        `pandas` is True, else a list of dicts."""
        if keys is not None and x_axis not in keys:
            keys = [x_axis, *keys]
        rows = list(self.scan_history(keys=keys))
        if samples and len(rows) > samples:
            step = len(rows) / samples
            rows = [rows[int(i * step)] for i in range(samples - 1)] + [rows[-1]]
        if pandas and importlib.util.find_spec("pandas") is not None:
            import pandas as pd  # type: ignore[import-untyped]  # optional, untyped

            return pd.DataFrame.from_records(rows)
        return rows

    def _artifacts(self, names: list[str]) -> list[ArtifactT]:
        out = []
        for full in names:
            try:
                record = self._resolver.registry.resolve(parse_artifact_name(full))
            except ArtifactNotFoundError:
                continue  # deleted since
            out.append(self._artifact_of(record, self._resolver))
        return out

    def logged_artifacts(self) -> list[ArtifactT]:
        return self._artifacts(self._record.logged)

    def used_artifacts(self) -> list[ArtifactT]:
        return self._artifacts(self._record.used)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path == other.path

    def __hash__(self) -> int:
        return hash(tuple(self.path))

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)}>"
