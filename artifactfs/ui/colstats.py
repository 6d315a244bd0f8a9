"""Per-column statistics of a table, as the HF dataset viewer shows them above each column.

Numbers get nulls, min, max, mean and a 10-bin histogram; short repeated strings and booleans
get their most common values; long or unique strings a histogram of their lengths; everything
gets its null count. WHY bounded: statistics come from a sample of at most SAMPLE_ROWS rows
(computed with pyarrow.compute, in C); for Parquet, nulls, min and max of the whole file come
from the footer's per-row-group statistics instead, which cost nothing to read. Each table says
which it did (`TableView.stats_note`), so a number from a sample is never passed off as exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SAMPLE_ROWS = 10_000
BINS = 10
TOP = 5


@dataclass
class Bar:
    label: str
    count: int
    height: int
    """Percent of the tallest bar (for the page's little chart)."""


@dataclass
class ColumnStats:
    rows: int
    """Rows the figures below were computed over."""
    nulls: int | None = None
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    distinct: int | None = None
    histogram: list[Bar] = field(default_factory=list)
    histogram_of: str = ""
    """"values" or "lengths" (of strings)."""
    top: list[Bar] = field(default_factory=list)

    @property
    def null_percent(self) -> float | None:
        if self.nulls is None or not self.rows:
            return None
        return 100.0 * self.nulls / self.rows


def _bars(pairs: list[tuple[str, int]]) -> list[Bar]:
    tallest = max((n for _, n in pairs), default=0) or 1
    return [Bar(label, n, round(100 * n / tallest)) for label, n in pairs]


def _fmt(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.3g}"


def histogram(values: Any, integers: bool = False) -> list[Bar]:
    """Equal-width bins over [min, max] of a pyarrow float64 array without nulls or NaNs (one
    bin per value for few distinct integers); counted by pyarrow.compute, in C."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(values):
        return []
    bounds = pc.min_max(values).as_py()
    lo, hi = float(bounds["min"]), float(bounds["max"])
    if integers and hi - lo < BINS:
        labels = [str(v) for v in range(int(lo), int(hi) + 1)]
        index = pc.cast(pc.subtract(values, pa.scalar(lo)), pa.int64())
    elif lo == hi:
        return _bars([(_fmt(lo), len(values))])
    else:
        width = (hi - lo) / BINS
        labels = [f"{_fmt(lo + i * width)}\u2013{_fmt(lo + (i + 1) * width)}" for i in range(BINS)]
        scaled = pc.floor(pc.divide(pc.subtract(values, pa.scalar(lo)), pa.scalar(width)))
        index = pc.min_element_wise(pc.cast(scaled, pa.int64()), pa.scalar(BINS - 1, pa.int64()))
    counts = [0] * len(labels)
    for row in pc.value_counts(index).to_pylist():
        counts[int(row["values"])] += int(row["counts"])
    return _bars(list(zip(labels, counts, strict=True)))


def column_stats(column: Any) -> ColumnStats:
    """Statistics of one pyarrow Array/ChunkedArray (a sample or a whole small table)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    stats = ColumnStats(rows=len(column), nulls=column.null_count)
    if pa.types.is_dictionary(t):
        column, t = column.cast(t.value_type), t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(column, pa.float64(), safe=False).drop_null()
        values = values.filter(pc.is_finite(values))
        if len(values):
            bounds = pc.min_max(values).as_py()
            stats.minimum, stats.maximum = bounds["min"], bounds["max"]
            stats.mean = pc.mean(values).as_py()
            if pa.types.is_integer(t):
                stats.minimum, stats.maximum = int(stats.minimum), int(stats.maximum)
            stats.histogram = histogram(values, integers=pa.types.is_integer(t))
            stats.histogram_of = "values"
    elif pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        counts = pc.value_counts(column.drop_null() if hasattr(column, "drop_null") else column)
        pairs = sorted(
            ((str(c["values"]), int(c["counts"])) for c in counts.to_pylist()), key=lambda p: -p[1]
        )
        stats.distinct = len(pairs)
        non_null = stats.rows - (stats.nulls or 0)
        if pa.types.is_boolean(t) or stats.distinct <= 20 or stats.distinct <= non_null // 2:
            stats.top = _bars(pairs[:TOP])
        else:
            lengths = pc.cast(pc.utf8_length(column), pa.float64()).drop_null()
            stats.histogram = histogram(lengths, integers=True)
            stats.histogram_of = "lengths"
    elif pa.types.is_temporal(t):
        present = column.drop_null() if hasattr(column, "drop_null") else column
        if len(present):
            bounds = pc.min_max(present).as_py()
            stats.minimum, stats.maximum = bounds["min"], bounds["max"]
    return stats


def parquet_footer_stats(metadata: Any, column_index: int) -> tuple[int | None, Any, Any]:
    """(nulls, min, max) of one column over every row group, from the footer's statistics;
    None where any row group lacks them (then the sample's figures stand)."""
    nulls: int | None = 0
    lo: Any = None
    hi: Any = None
    have_bounds = True
    for rg in range(metadata.num_row_groups):
        s = metadata.row_group(rg).column(column_index).statistics
        if s is None:
            return None, None, None
        if s.has_null_count and nulls is not None:
            nulls += s.null_count
        else:
            nulls = None
        if have_bounds and s.has_min_max:
            try:
                lo = s.min if lo is None or s.min < lo else lo
                hi = s.max if hi is None or s.max > hi else hi
            except TypeError:
                have_bounds = False
        elif metadata.row_group(rg).num_rows > (s.null_count if s.has_null_count else 0):
            have_bounds = False
    return nulls, (lo if have_bounds else None), (hi if have_bounds else None)
