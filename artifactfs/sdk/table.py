"""W&B's Table with media-free cells: columns and rows, stored in an artifact as
`<name>.table.json`.

`Artifact.add(table, name)` writes it, `Artifact.get(name)` reads it back, `run.log({"k":
table})` logs it as W&B does (run_tables.py). W&B's methods are here: `add_data`,
`add_column`, `get_column` (`convert_to="numpy"`), `iterrows`, `get_index`, `get_dataframe`,
and `Table(dataframe=...)`. Cells are JSON values (numbers, text, booleans, None, lists, dicts;
numpy scalars become numbers); W&B's media cells (`wandb.Image`...) are not supported. The JSON
keeps W&B's field names (`_type`, `columns`, `data`, `ncols`, `nrows`) so a table logged here
reads naturally with other tools. A value the user builds, apart from the Artifact that stores
it: it knows nothing of artifacts (it imports only the mixin that makes the W&B methods it
lacks, such as `add_computed_columns`, say so).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from artifactfs.sdk.unsupported import ReportsMissingNames

SUFFIX = ".table.json"


class Table(ReportsMissingNames):
    """Rows of values under named columns."""

    artifact_type = "table"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Sequence[Sequence[Any]] | None = None,
        rows: Sequence[Sequence[Any]] | None = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: Any = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = None,
    ) -> None:
        """W&B's signature; `rows` is W&B's older name for `data`; `dataframe` (pandas) gives
        both columns and rows. `dtype`, `optional`, `allow_mixed_types` (W&B's column type
        checks) and `log_mode` are accepted; cells are checked as JSON when stored."""
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = [[_cell(v) for v in row] for row in dataframe.itertuples(index=False)]
        cells = [[_cell(v) for v in r] for r in (data if data is not None else rows or [])]
        if columns is None:
            width = len(cells[0]) if cells else 0
            columns = [f"col{i}" for i in range(width)]
        self.columns: list[str] = [str(c) for c in columns]
        for i, row in enumerate(cells):
            if len(row) != len(self.columns):
                raise ValueError(f"row {i} has {len(row)} values for {len(self.columns)} columns")
        self.data: list[list[Any]] = cells

    def add_data(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} values, got {len(values)}")
        self.data.append([_cell(v) for v in values])

    def add_column(self, name: str, data: Sequence[Any], optional: bool = False) -> None:
        """A new column at the right; `data` has one value per row (or starts the table)."""
        if not isinstance(name, str) or name in self.columns:
            raise ValueError(f"column name {name!r} must be a new string")
        values = [_cell(v) for v in data]
        if self.columns and len(values) != len(self.data):
            raise ValueError(
                f"expected {len(self.data)} values for column {name!r}, got {len(values)}"
            )
        if not self.columns:
            self.data = [[] for _ in values]
        for row, value in zip(self.data, values, strict=True):
            row.append(value)
        self.columns.append(name)

    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """The values of column `name`; a numpy array with `convert_to="numpy"`."""
        if convert_to not in (None, "numpy"):
            raise ValueError(f"convert_to must be None or 'numpy', not {convert_to!r}")
        i = self.columns.index(name)
        values = [row[i] for row in self.data]
        if convert_to == "numpy":
            import numpy

            return numpy.array(values)
        return values

    def get_index(self) -> list[int]:
        """Row indices, as W&B's (which are ints)."""
        return list(range(len(self.data)))

    def iterrows(self) -> Iterator[tuple[int, list[Any]]]:
        """`(index, row)` for each row, as W&B's."""
        yield from enumerate(self.data)

    def get_dataframe(self) -> Any:
        """A pandas DataFrame of the table (pandas must be installed)."""
        import pandas  # type: ignore[import-untyped]  # optional, untyped

        return pandas.DataFrame.from_records(self.data, columns=self.columns)

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


def _cell(value: Any) -> Any:
    """A numpy or pandas scalar as the Python value it holds (JSON needs plain numbers)."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (list, dict, str, bytes)):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def table_path(name: str) -> str:
    """W&B naming: `name` -> `name.table.json` (unchanged if it already ends so)."""
    return name if name.endswith(SUFFIX) else name + SUFFIX
