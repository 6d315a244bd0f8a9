"""Previews of one file of a version: a table page, a rendered README, the head of a text, an image.

WHY bounded reads: a preview must cost about the same for a 1 KB file and a 10 GB one, so every
kind reads a bounded part through the cache's range reads (big entries are fetched by block,
never whole): text the first 64 KiB, tables one page (tables.py: Parquet by row group, text
tables through a row-offset index), JSON only when small enough to parse whole, markdown when
small enough to render. Images are not decoded here at all: the page points an <img> at the
download route (and the grid at thumbnails, thumbs.py).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.ui.data import Browser
from artifactfs.ui.entryio import IMAGE_TYPES, image_type
from artifactfs.ui.markdown import render_markdown
from artifactfs.ui.tables import Tables, TableUnreadable, TableView, table_kind

__all__ = ["IMAGE_TYPES", "Preview", "image_type", "preview"]

log = logging.getLogger(__name__)

HEAD_BYTES = 64 << 10
PARSE_LIMIT = 1 << 20
"""JSON files up to this size are parsed and pretty-printed; markdown up to this rendered."""
IMAGE_LIMIT = 64 << 20

TEXT_SUFFIXES = {
    ".txt", ".md", ".rst", ".log", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".py",
    ".sh", ".jsonl", ".ndjson", ".xml", ".html", ".js", ".ts", ".css", ".tex", ".r", ".sql",
}  # fmt: skip
MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass
class Preview:
    """What the file page shows: `kind` is "image", "table" (`table`), "markdown" (`html`),
    "text" (`text`) or "none" (`note` says why)."""

    kind: str
    table: TableView | None = None
    html: str = ""
    text: str = ""
    language: str = ""
    truncated: bool = False
    note: str = ""


def preview(
    browser: Browser,
    entry: ManifestEntry,
    tables: Tables | None = None,
    *,
    page: int = 1,
    col_start: int = 0,
    find_image: Callable[[str], str | None] = lambda p: None,
) -> Preview:
    """The preview of an entry; a file that cannot be read says why instead of failing the page."""
    try:
        return _preview(browser, entry, tables or Tables(browser), page, col_start, find_image)
    except (ArtifactFSError, OSError) as e:
        return Preview("none", note=f"cannot read this file: {e}")


def _preview(
    browser: Browser,
    entry: ManifestEntry,
    tables: Tables,
    page: int,
    col_start: int,
    find_image: Callable[[str], str | None],
) -> Preview:
    path, size = entry.path, entry.size
    suffix = posixpath.splitext(path)[1].lower()
    if image_type(path):
        if size is not None and size > IMAGE_LIMIT:
            return Preview("none", note="image too large to preview")
        return Preview("image")
    problem = ""
    if table_kind(path) is not None:
        try:
            view = tables.view(entry, page=page, col_start=col_start, find_image=find_image)
            return Preview("table", table=view)
        except TableUnreadable as e:
            problem = str(e)
            if suffix in (".parquet", ".pq", ".arrow", ".feather", ".arrows", ".ipc"):
                return Preview("none", note=problem)
    if suffix in MARKDOWN_SUFFIXES and size is not None and size <= PARSE_LIMIT:
        text = browser.read(entry, 0, size).decode("utf-8", "replace")
        return Preview("markdown", html=render_markdown(text), text=text, language="markdown")
    if suffix == ".json" and size is not None and size <= PARSE_LIMIT:
        head = browser.read(entry, 0, size)
        try:
            pretty = json.dumps(json.loads(head), indent=2, ensure_ascii=False)
        except ValueError:
            return _text(head, size, "json", problem)
        return Preview(
            "text",
            text=pretty[:HEAD_BYTES],
            language="json",
            truncated=len(pretty) > HEAD_BYTES,
            note=problem,
        )
    head = browser.read(entry, 0, HEAD_BYTES)
    language = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(suffix, "text")
    if suffix in TEXT_SUFFIXES or suffix == ".json" or _looks_textual(head):
        return _text(head, size, language, problem)
    return Preview("none", note=problem or "binary file: no preview")


def _looks_textual(head: bytes) -> bool:
    sample = head[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(sample) - 3  # a character cut at the sample's end
    return True


def _text(head: bytes, size: int | None, language: str, note: str = "") -> Preview:
    truncated = size is None or size > len(head)
    return Preview(
        "text",
        text=head.decode("utf-8", "replace"),
        language=language,
        truncated=truncated,
        note=note,
    )
