"""A minimal W&B-style Table: columns and rows, stored in an artifact as `<name>.table.json`.

Only what artifacts need: `Artifact.add(table, name)` writes it, `Artifact.get(name)` reads it
back. The JSON keeps W&B's field names (`_type`, `columns`, `data`, `ncols`, `nrows`) so a
table logged here reads naturally with other tools. A value the user builds, apart from the
Artifact that stores it: it knows nothing of artifacts (and imports nothing of ours).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

SUFFIX = ".table.json"


class Table:
    """Rows of values under named columns."""

    artifact_type = "table"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        rows = [list(r) for r in (data or [])]
        if columns is None:
            width = len(rows[0]) if rows else 0
            columns = [f"col{i}" for i in range(width)]
        self.columns: list[str] = [str(c) for c in columns]
        for i, row in enumerate(rows):
            if len(row) != len(self.columns):
                raise ValueError(f"row {i} has {len(row)} values for {len(self.columns)} columns")
        self.data: list[list[Any]] = rows

    def add_data(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} values, got {len(values)}")
        self.data.append(list(values))

    def get_column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.data]

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": "table",
            "columns": self.columns,
            "data": self.data,
            "ncols": len(self.columns),
            "nrows": len(self.data),
        }

    def to_bytes(self) -> bytes:
        try:
            return json.dumps(self.to_json()).encode()
        except (TypeError, ValueError) as e:
            raise ValueError(f"table data is not JSON-serializable: {e}") from e

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        if data.get("_type") != "table":
            raise ValueError("not a table JSON document")
        return cls(columns=data.get("columns") or [], data=data.get("data") or [])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Table) and self.columns == other.columns and self.data == other.data
        )

    def __repr__(self) -> str:
        return f"Table(columns={self.columns!r}, rows={len(self.data)})"


def table_path(name: str) -> str:
    """W&B naming: `name` -> `name.table.json` (unchanged if it already ends so)."""
    return name if name.endswith(SUFFIX) else name + SUFFIX
