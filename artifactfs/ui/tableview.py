"""What a table page shows (rows of cells, a window of typed columns with statistics) and the
small rules every table reader shares: which reader a file name asks for, how a value becomes a
cell, and which cells name an image of the same version. Apart from tables.py so the readers
stay readable in one sitting.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from artifactfs.ui.colstats import ColumnStats, column_stats
from artifactfs.ui.entryio import image_type

PER_PAGE = 50
COLUMNS = 20
MAX_CELL = 200


class TableUnreadable(Exception):
    """Not a table of the kind its name says (the page falls back to text or says why)."""


@dataclass
class Cell:
    text: str
    image: str | None = None
    """The path, in the same version, of an image this cell names."""
    null: bool = False


@dataclass
class Column:
    name: str
    type: str
    stats: ColumnStats | None = None


@dataclass
class TableView:
    """One page of rows and one window of columns of a table, with what the page says of it."""

    format: str
    columns: list[Column]
    all_columns: list[str]
    col_start: int
    rows: list[list[Cell]]
    row_start: int
    """0-based number of the first data row shown."""
    per_page: int
    total_rows: int | None
    more: bool
    """Rows follow this page."""
    stats_note: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.row_start // self.per_page + 1

    @property
    def pages(self) -> int | None:
        return None if self.total_rows is None else max(1, -(-self.total_rows // self.per_page))

    @property
    def col_windows(self) -> list[tuple[int, int]]:
        """(start, end) of every column window, for the "see the other columns" links."""
        n = len(self.all_columns)
        return [(s, min(n, s + COLUMNS)) for s in range(0, n, COLUMNS)]


def table_kind(path: str) -> str | None:
    """The reader for a file, by name."""
    lower = path.lower()
    if lower.endswith(".table.json"):
        return "wandb"
    for suffixes, kind in (
        ((".parquet", ".pq"), "parquet"),
        ((".arrow", ".feather", ".arrows", ".ipc"), "arrow"),
        ((".csv",), "csv"),
        ((".tsv", ".tab"), "tsv"),
        ((".jsonl", ".ndjson"), "jsonl"),
    ):
        if lower.endswith(suffixes):
            return kind
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def cell(value: Any) -> Cell:
    """A value as the page shows it; a W&B image-file cell or an image path string keeps the
    path (image_path() decides whether the version holds it)."""
    image = None
    if isinstance(value, dict) and value.get("_type") == "image-file":
        image = str(value.get("path") or "") or None
    elif isinstance(value, str) and len(value) < 1024 and image_type(value):
        image = value
    return Cell(_text(value), image, value is None)


def arrow_rows(batch: Any, names: list[str]) -> list[list[Cell]]:
    return [[cell(r.get(n)) for n in names] for r in batch.to_pylist()]


def columns_of(values: list[list[Any]], names: list[str]) -> list[Column]:
    """Types and statistics of columns held as Python values (JSON lines, W&B Tables)."""
    import pyarrow as pa

    out = []
    for name, col in zip(names, values, strict=True):
        present = [v for v in col if v is not None]
        if present and all(isinstance(v, dict) and v.get("_type") for v in present):
            kinds = {str(v["_type"]) for v in present}  # W&B media cells: image-file, ...
            kind = kinds.pop() if len(kinds) == 1 else "media"
            out.append(
                Column(name, kind, ColumnStats(rows=len(col), nulls=len(col) - len(present)))
            )
            continue
        try:
            array = pa.array(col)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            out.append(Column(name, "mixed", column_stats(pa.array([_text(v) for v in col]))))
            continue
        out.append(Column(name, str(array.type), column_stats(array)))
    return out


def image_path(value: str, table_path: str, find: Callable[[str], str | None]) -> str | None:
    """The version path an image cell names: relative to the version root or to the table's
    folder, never outside the version."""
    for candidate in (value, posixpath.join(posixpath.dirname(table_path), value)):
        clean = posixpath.normpath(candidate.lstrip("/"))
        if clean.startswith("..") or clean == ".":
            continue
        found = find(clean)
        if found is not None:
            return found
    return None
