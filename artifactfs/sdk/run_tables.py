"""`run.log({"key": table})` as W&B does it: the Table becomes an artifact, history and summary
hold a reference to it.

W&B logs each Table as the artifact `run-<run id>-<key>` of type `run_table` holding
`<key>.table.json`, and stores in the row a `table-file` dict (`_type`, `sha256`, `size`,
`path`, `ncols`, `nrows`, `artifact_path`, `_latest_artifact_path`, `log_mode`). We write the
same dict; its artifact paths are `artifact://entity/project/run-<id>-<key>:vN/<key>.table.json`,
which `fsspec`/pandas open through artifactfs (W&B's `wandb-client-artifact://` names its own
server). Logging the same rows again makes no new version, as with any artifact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

from artifactfs.sdk.artifact import Artifact
from artifactfs.sdk.table import Table, table_path
from artifactfs.sdk.util import make_artifact_name_safe

RUN_TABLE_TYPE = "run_table"


class LoggingRun(Protocol):
    """What this needs of a run (wandb_run.Run, which imports this module)."""

    id: str

    def log_artifact(self, artifact_or_path: Artifact) -> Artifact: ...


def log_tables(run: LoggingRun, data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with every Table logged as its artifact and replaced by W&B's reference."""
    out = dict(data)
    for key, value in data.items():
        if isinstance(value, Table):
            out[key] = _log_table(run, key, value)
    return out


def _log_table(run: LoggingRun, key: str, table: Table) -> dict[str, Any]:
    name = make_artifact_name_safe(f"run-{run.id}-{key}")
    artifact = Artifact(name, type=RUN_TABLE_TYPE)
    artifact.add(table, key)
    logged = run.log_artifact(artifact)
    body = table.to_bytes()
    path = table_path(key)
    where = f"artifact://{logged.entity}/{logged.project}/{logged.name.split(':')[0]}"
    return {
        "_type": "table-file",
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "path": path,
        "ncols": len(table.columns),
        "nrows": len(table.data),
        "artifact_path": f"{where}:{logged.version}/{path}",
        "_latest_artifact_path": f"{where}:latest/{path}",
        "log_mode": "IMMUTABLE",
    }
