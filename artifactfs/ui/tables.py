"""Tables of a version (Parquet, Arrow, CSV/TSV, JSON lines, W&B Tables), paged on the server.

WHY paged by the file's own structure: a page must cost the same on a 10 MB and a 10 GB file.
Parquet pages come from the one row group that holds them (the footer says where each starts;
pyarrow reads the shown columns' chunks of that group, through a buffered stream, over range
reads of the cache); text tables from a sparse row-offset index (rowindex.py); Arrow files batch
by batch from the start (an IPC stream has no index). Only COLUMNS columns are read at a time
(`col_start` moves the window), so a 3,000-column file costs what 20 columns cost. Column types
come from the file's schema (Parquet, Arrow) or pyarrow's inference over the sample; statistics
are colstats.py's. A cell naming an image in the same version (a W&B `image-file` cell or a path
string) is shown as its thumbnail.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.ui.colstats import SAMPLE_ROWS, column_stats, parquet_footer_stats
from artifactfs.ui.data import Browser
from artifactfs.ui.entryio import RangeFile
from artifactfs.ui.rowindex import RowIndexes
from artifactfs.ui.tableview import (
    COLUMNS,
    PER_PAGE,
    Cell,
    Column,
    TableUnreadable,
    TableView,
    arrow_rows,
    cell,
    columns_of,
    image_path,
    table_kind,
)

__all__ = ["COLUMNS", "PER_PAGE", "TableUnreadable", "TableView", "Tables", "table_kind"]

SAMPLE_BYTES = 1 << 20
"""Head of a text table parsed for its column types and statistics."""
WANDB_LIMIT = 16 << 20
KEPT_STATS = 64
KEPT_FOOTERS = 8
"""Parquet footers kept parsed (a big file's is a few MB in memory)."""


class Tables:
    """Reads table pages of one Browser's versions; keeps row indexes and statistics."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.rows = RowIndexes(browser)
        self._lock = threading.Lock()
        self._stats: OrderedDict[tuple[str, str, int], tuple[list[Column], str]] = OrderedDict()
        self._footers: OrderedDict[tuple[str, str], Any] = OrderedDict()
        """Parsed Parquet footers: a 10 GB file's footer is megabytes of Thrift, parsed once."""

    def view(
        self,
        entry: ManifestEntry,
        *,
        page: int = 1,
        col_start: int = 0,
        find_image: Callable[[str], str | None] = lambda p: None,
    ) -> TableView:
        """Page `page` (from 1) of `entry`'s rows, columns from `col_start`; TableUnreadable."""
        kind = table_kind(entry.path)
        if kind is None:
            raise TableUnreadable("not a table")
        if entry.size is None:
            raise TableUnreadable("size unknown")
        first = (max(1, page) - 1) * PER_PAGE
        col_start = max(0, col_start)
        try:
            read = {
                "parquet": self._parquet,
                "arrow": self._arrow,
                "csv": self._delimited,
                "tsv": self._delimited,
                "jsonl": self._jsonl,
                "wandb": self._wandb,
            }[kind]
            view = read(entry, first, col_start)
        except (OSError, ValueError, UnicodeDecodeError, KeyError) as e:  # pyarrow's derive
            raise TableUnreadable(f"not a readable {kind} file: {e}") from e
        for row in view.rows:
            for shown in row:
                if shown.image is not None:
                    shown.image = image_path(shown.image, entry.path, find_image)
        return view

    # -- statistics, computed once per (file, column window) --------------------------------
    def _columns(
        self, entry: ManifestEntry, col_start: int, make: Callable[[], tuple[list[Column], str]]
    ) -> tuple[list[Column], str]:
        key = (entry.digest, entry.ref or "", col_start)
        with self._lock:
            hit = self._stats.get(key)
        if hit is None:
            hit = make()
            with self._lock:
                self._stats[key] = hit
                while len(self._stats) > KEPT_STATS:
                    self._stats.popitem(last=False)
        return hit

    # -- readers ----------------------------------------------------------------------------
    def _parquet(self, entry: ManifestEntry, first: int, c0: int) -> TableView:
        import pyarrow.parquet as pq

        key = (entry.digest, entry.ref or "")
        with self._lock:
            footer = self._footers.get(key)
        pf = pq.ParquetFile(
            RangeFile(self.browser, entry), metadata=footer, buffer_size=1 << 20, pre_buffer=False
        )
        md, schema = pf.metadata, pf.schema_arrow
        with self._lock:
            self._footers[key] = md
            self._footers.move_to_end(key)
            while len(self._footers) > KEPT_FOOTERS:
                self._footers.popitem(last=False)
        names = list(schema.names)
        window = names[c0 : c0 + COLUMNS]
        starts = [0]
        for rg in range(md.num_row_groups):
            starts.append(starts[-1] + md.row_group(rg).num_rows)
        total = md.num_rows
        rows: list[list[Cell]] = []
        rg = max(0, bisect.bisect_right(starts, first) - 1)
        skip = first - starts[rg]
        # The statistics' sample is the start of the page's own row group: the batches this
        # page decodes anyway (or a few more), so it costs no second read of the file.
        with self._lock:
            need_sample = (entry.digest, entry.ref or "", c0) not in self._stats
        sample_rg, sample, sampled = rg, [], 0

        def wanted() -> bool:
            return len(rows) < PER_PAGE or (need_sample and sampled < SAMPLE_ROWS)

        while wanted() and rg < md.num_row_groups and first < total:
            seen = 0
            for batch in pf.iter_batches(batch_size=4096, row_groups=[rg], columns=window):
                if need_sample and sampled < SAMPLE_ROWS:
                    sample.append(batch)
                    sampled += batch.num_rows
                if seen + batch.num_rows > skip and len(rows) < PER_PAGE:
                    part = batch.slice(max(0, skip - seen), PER_PAGE - len(rows))
                    rows.extend(arrow_rows(part, window))
                seen += batch.num_rows
                if not wanted():
                    break
            rg, skip = rg + 1, 0

        def columns() -> tuple[list[Column], str]:
            import pyarrow as pa

            table = pa.Table.from_batches(sample).slice(0, SAMPLE_ROWS) if sample else None
            flat = md.num_columns == len(names)
            cols = []
            for j, name in enumerate(window):
                col = Column(name, str(schema.field(name).type))
                if table is not None:
                    col.stats = column_stats(table.column(j))
                    if flat:
                        nulls, lo, hi = parquet_footer_stats(md, c0 + j)
                        if nulls is not None:
                            col.stats.nulls, col.stats.rows = nulls, total
                        if lo is not None and col.stats.minimum is not None:
                            col.stats.minimum, col.stats.maximum = lo, hi
                cols.append(col)
            n = table.num_rows if table is not None else 0
            if n >= total:
                return cols, f"all {total:,} rows"
            start = starts[sample_rg]
            where = f"the first {n:,} rows" if not start else f"{n:,} rows from row {start + 1:,}"
            return cols, (
                f"nulls, min and max over all {total:,} rows (Parquet footer statistics); "
                f"mean, histograms and top values from {where}"
            )

        cols, note = self._columns(entry, c0, columns)
        return TableView(
            "Parquet", cols, names, c0, rows, first, PER_PAGE, total, first + PER_PAGE < total,
            note, [f"{md.num_row_groups} row group{'s' if md.num_row_groups != 1 else ''}"],
        )  # fmt: skip

    def _arrow(self, entry: ManifestEntry, first: int, c0: int) -> TableView:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        def batches() -> Any:
            f = RangeFile(self.browser, entry)
            try:
                reader = ipc.open_file(f)
                return (reader.get_batch(i) for i in range(reader.num_record_batches)), "file"
            except pa.ArrowInvalid:
                f.seek(0)
                return iter(ipc.open_stream(f)), "stream"

        it, form = batches()
        rows: list[list[Cell]] = []
        seen, names, window, ended = 0, [], [], True
        for batch in it:
            names = batch.schema.names
            window = names[c0 : c0 + COLUMNS]
            if seen + batch.num_rows > first and len(rows) <= PER_PAGE:
                part = batch.select(window).slice(max(0, first - seen), PER_PAGE + 1 - len(rows))
                rows.extend(arrow_rows(part, window))
            seen += batch.num_rows
            if len(rows) > PER_PAGE:
                ended = False
                break

        def columns() -> tuple[list[Column], str]:
            got, n = [], 0
            for batch in batches()[0]:
                got.append(batch.select(window))
                n += batch.num_rows
                if n >= SAMPLE_ROWS:
                    break
            sample = pa.Table.from_batches(got).slice(0, SAMPLE_ROWS) if got else None
            cols = [
                Column(name, str(sample.schema.field(name).type), column_stats(sample.column(j)))
                for j, name in enumerate(window)
            ] if sample is not None else []  # fmt: skip
            count = sample.num_rows if sample is not None else 0
            return cols, (
                f"all {count:,} rows" if ended and count == seen else f"the first {count:,} rows"
            )

        cols, note = self._columns(entry, c0, columns)
        return TableView(
            f"Arrow ({form})", cols, list(names), c0, rows[:PER_PAGE], first, PER_PAGE,
            seen if ended else None, not ended, note,
        )  # fmt: skip

    def _delimited(self, entry: ManifestEntry, first: int, c0: int) -> TableView:
        import pyarrow.csv as pcsv

        delimiter = "\t" if table_kind(entry.path) == "tsv" else ","
        head, whole = self._head(entry)
        header = next(
            csv.reader(io.StringIO(head.decode("utf-8", "replace")), delimiter=delimiter), []
        )
        index = self.rows.get(entry, quoting=True)
        start, skip, length = index.span(first + 1, PER_PAGE + 1)
        text = self.browser.read(entry, start, length).decode("utf-8", "replace")
        parsed = list(csv.reader(io.StringIO(text), delimiter=delimiter))[
            skip : skip + PER_PAGE + 1
        ]
        window = header[c0 : c0 + COLUMNS]
        rows = [[cell(v) for v in r[c0 : c0 + COLUMNS]] for r in parsed[:PER_PAGE]]

        def columns() -> tuple[list[Column], str]:
            try:
                sample = pcsv.read_csv(
                    io.BytesIO(head),
                    parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                    convert_options=pcsv.ConvertOptions(include_columns=window),
                ).slice(0, SAMPLE_ROWS)
            except (OSError, ValueError) as e:
                raise TableUnreadable(str(e)) from e
            cols = [
                Column(n, str(sample.schema.field(n).type), column_stats(sample.column(n)))
                for n in window
            ]
            exact = whole and sample.num_rows < SAMPLE_ROWS
            return cols, (
                f"all {sample.num_rows:,} rows" if exact else f"the first {sample.num_rows:,} rows"
            )

        cols, note = self._columns(entry, c0, columns)
        total = index.total_rows
        return TableView(
            "TSV" if delimiter == "\t" else "CSV", cols, header, c0, rows, first, PER_PAGE,
            None if total is None else max(0, total - 1), len(parsed) > PER_PAGE, note,
        )  # fmt: skip

    def _jsonl(self, entry: ManifestEntry, first: int, c0: int) -> TableView:
        head, whole = self._head(entry)
        sample = [json.loads(line) for line in head.splitlines()[:SAMPLE_ROWS] if line.strip()]
        names = list(dict.fromkeys(k for r in sample if isinstance(r, dict) for k in r))
        window = names[c0 : c0 + COLUMNS]
        index = self.rows.get(entry, quoting=False)
        start, skip, length = index.span(first, PER_PAGE + 1)
        lines = self.browser.read(entry, start, length).splitlines()[skip : skip + PER_PAGE + 1]
        records = [json.loads(line) if line.strip() else {} for line in lines]
        rows = [
            [cell(r.get(n) if isinstance(r, dict) else None) for n in window]
            for r in records[:PER_PAGE]
        ]

        def columns() -> tuple[list[Column], str]:
            cols = columns_of(
                [[r.get(n) if isinstance(r, dict) else None for r in sample] for n in window],
                window,
            )
            exact = whole and len(sample) < SAMPLE_ROWS
            return cols, f"all {len(sample):,} rows" if exact else f"the first {len(sample):,} rows"

        cols, note = self._columns(entry, c0, columns)
        return TableView(
            "JSON lines", cols, names, c0, rows, first, PER_PAGE, index.total_rows,
            len(records) > PER_PAGE, note,
        )  # fmt: skip

    def _wandb(self, entry: ManifestEntry, first: int, c0: int) -> TableView:
        if entry.size is not None and entry.size > WANDB_LIMIT:
            raise TableUnreadable("W&B Table too large to parse here")
        doc = json.loads(self.browser.read(entry, 0, entry.size or WANDB_LIMIT))
        if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list):
            raise TableUnreadable("no columns: not a W&B Table")
        names = [str(c) for c in doc["columns"]]
        data = [r for r in doc.get("data") or [] if isinstance(r, list)]
        window = names[c0 : c0 + COLUMNS]
        rows = [[cell(v) for v in r[c0 : c0 + COLUMNS]] for r in data[first : first + PER_PAGE]]
        cols, note = self._columns(
            entry, c0,
            lambda: (columns_of([[r[j] if j < len(r) else None for r in data] for j in range(c0, c0 + len(window))], window), f"all {len(data):,} rows"),
        )  # fmt: skip
        return TableView(
            "W&B Table", cols, names, c0, rows, first, PER_PAGE, len(data),
            first + PER_PAGE < len(data), note,
        )  # fmt: skip

    def _head(self, entry: ManifestEntry) -> tuple[bytes, bool]:
        """The first SAMPLE_BYTES of a text table cut after its last whole line, and whether
        that is the whole file."""
        head = self.browser.read(entry, 0, SAMPLE_BYTES)
        whole = entry.size is not None and len(head) >= entry.size
        if not whole and b"\n" in head:
            head = head[: head.rindex(b"\n") + 1]
        return head, whole
