"""Previews of one file of a version: the first rows of a table, the head of a text, an image.

WHY bounded reads: a preview must cost about the same for a 1 KB file and a 10 GB one, so every
kind reads a fixed head through the cache's range reads (big entries are fetched by block, never
whole): text and CSV the first 64 KiB, Parquet its footer plus the first row group (pyarrow over a
seekable view of the entry), JSON and W&B Tables only when small enough to parse whole. Images
are not decoded here at all: the page points an <img> at the download route.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.sdk.table import SUFFIX as TABLE_SUFFIX
from artifactfs.sdk.table import Table
from artifactfs.ui.data import Browser

log = logging.getLogger(__name__)

HEAD_BYTES = 64 << 10
PARSE_LIMIT = 1 << 20
"""JSON files up to this size are parsed and pretty-printed."""
TABLE_LIMIT = 16 << 20
IMAGE_LIMIT = 64 << 20
MAX_ROWS = 50
MAX_COLUMNS = 50
MAX_CELL = 200

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT_SUFFIXES = {
    ".txt", ".md", ".rst", ".log", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".py",
    ".sh", ".jsonl", ".ndjson", ".xml", ".html", ".js", ".ts", ".css", ".tex", ".r", ".sql",
}  # fmt: skip


@dataclass
class Preview:
    """What the file page shows: `kind` is "image", "rows", "text" or "none" (see `note`)."""

    kind: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None
    text: str = ""
    language: str = ""
    truncated: bool = False
    note: str = ""


def image_type(path: str) -> str | None:
    """The MIME type of a previewable image (by name; SVG is not one: it can carry script)."""
    return IMAGE_TYPES.get(posixpath.splitext(path)[1].lower())


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over one entry's bytes (for pyarrow's Parquet reader)."""

    def __init__(self, browser: Browser, entry: ManifestEntry) -> None:
        super().__init__()
        if entry.size is None:
            raise ValueError("size unknown")
        self._browser, self._entry, self._size, self._pos = browser, entry, entry.size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._browser.read(self._entry, self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def preview(browser: Browser, entry: ManifestEntry) -> Preview:
    """The preview of an entry; a file that cannot be read says why instead of failing the page."""
    try:
        return _preview(browser, entry)
    except (ArtifactFSError, OSError) as e:
        return Preview("none", note=f"cannot read this file: {e}")


def _preview(browser: Browser, entry: ManifestEntry) -> Preview:
    path, size = entry.path, entry.size
    suffix = posixpath.splitext(path)[1].lower()
    if image_type(path):
        if size is not None and size > IMAGE_LIMIT:
            return Preview("none", note="image too large to preview")
        return Preview("image")
    if path.endswith(TABLE_SUFFIX) and (size is None or size <= TABLE_LIMIT):
        table = _table(browser, entry)
        if table is not None:
            return table
    if suffix in (".csv", ".tsv"):
        return _csv(browser, entry, "\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return _parquet(browser, entry)
    if suffix == ".json" and size is not None and size <= PARSE_LIMIT:
        head = browser.read(entry, 0, size)
        try:
            pretty = json.dumps(json.loads(head), indent=2, ensure_ascii=False)
        except ValueError:
            return _text(head, size, "json")
        return Preview(
            "text", text=pretty[:HEAD_BYTES], language="json", truncated=len(pretty) > HEAD_BYTES
        )
    head = browser.read(entry, 0, HEAD_BYTES)
    language = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(suffix, "text")
    if suffix in TEXT_SUFFIXES or suffix == ".json" or _looks_textual(head):
        return _text(head, size, language)
    return Preview("none", note="binary file: no preview")


def _looks_textual(head: bytes) -> bool:
    sample = head[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(sample) - 3  # a character cut at the sample's end
    return True


def _text(head: bytes, size: int | None, language: str) -> Preview:
    truncated = size is None or size > len(head)
    return Preview(
        "text", text=head.decode("utf-8", "replace"), language=language, truncated=truncated
    )


def _table(browser: Browser, entry: ManifestEntry) -> Preview | None:
    raw = browser.read(entry, 0, entry.size if entry.size is not None else TABLE_LIMIT)
    try:
        table = Table.from_json(json.loads(raw))
    except (ValueError, TypeError, AttributeError):
        return None  # not a table after all: shown as JSON text
    return Preview(
        "rows",
        columns=[_cell(c) for c in table.columns[:MAX_COLUMNS]],
        rows=[[_cell(v) for v in row[:MAX_COLUMNS]] for row in table.data[:MAX_ROWS]],
        total_rows=len(table.data),
        truncated=len(table.data) > MAX_ROWS or len(table.columns) > MAX_COLUMNS,
        note="W&B Table",
    )


def _csv(browser: Browser, entry: ManifestEntry, delimiter: str) -> Preview:
    head = browser.read(entry, 0, HEAD_BYTES)
    partial = entry.size is None or entry.size > len(head)
    text = head.decode("utf-8", "replace")
    if partial and "\n" in text:
        text = text[: text.rindex("\n")]  # drop the line the read cut
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    more = partial or len(body) > MAX_ROWS
    return Preview(
        "rows",
        columns=[_cell(c) for c in header[:MAX_COLUMNS]],
        rows=[[_cell(v) for v in r[:MAX_COLUMNS]] for r in body[:MAX_ROWS]],
        total_rows=None if partial else len(body),
        truncated=more or len(header) > MAX_COLUMNS,
    )


def _parquet(browser: Browser, entry: ManifestEntry) -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return Preview("none", note="Parquet preview needs pyarrow (pip install pyarrow)")
    if entry.size is None:
        return Preview("none", note="size unknown: no Parquet preview")
    try:
        pf = pq.ParquetFile(RangeFile(browser, entry))
        names = pf.schema_arrow.names
        batch = next(pf.iter_batches(batch_size=MAX_ROWS, columns=names[:MAX_COLUMNS]), None)
    except (OSError, ValueError) as e:  # pyarrow's errors derive from these
        return Preview("none", note=f"not a readable Parquet file: {e}")
    rows = batch.to_pylist() if batch is not None else []
    total = pf.metadata.num_rows
    return Preview(
        "rows",
        columns=names[:MAX_COLUMNS],
        rows=[[_cell(r[c]) for c in names[:MAX_COLUMNS]] for r in rows],
        total_rows=total,
        truncated=total > len(rows) or len(names) > MAX_COLUMNS,
        note="Parquet",
    )
