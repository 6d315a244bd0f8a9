"""Where the rows of a text table (CSV, TSV, JSON lines) start: a sparse row-offset index.

WHY: a text table has no footer saying where row 1,000,000 starts, and re-reading the file
from the top for every page would make page N cost N pages. The index keeps the byte offset of
every STEP-th row, found by one forward scan that runs only as far as the furthest page anyone
asked for, in chunks read through the cache; a later page then starts at the checkpoint before
it and parses at most STEP rows it does not show. Row ends are newlines outside double quotes
(RFC 4180: a quoted field may hold newlines; a doubled quote toggles twice and changes nothing);
JSON lines have no quoting (a JSON string cannot hold a raw newline).
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import OrderedDict

from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.ui.data import Browser

STEP = 256
"""Rows between two checkpoints."""
CHUNK = 1 << 20
SCAN_LIMIT = 256 << 20
"""Bytes one request may scan forward (a far page of a huge file fills the index over a few
requests rather than holding one for minutes)."""
READ_LIMIT = 16 << 20
"""Bytes read for one page: a file without line breaks is never read whole."""
KEPT = 32
"""Indexes kept (by entry), least recently used dropped."""
_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')
_NEWLINE = re.compile(rb"\n")


class RowIndex:
    """Row starts of one text table; row 0 is the first line (a CSV's header)."""

    def __init__(self, browser: Browser, entry: ManifestEntry, *, quoting: bool) -> None:
        self.browser, self.entry, self.quoting = browser, entry, quoting
        self.size = entry.size if entry.size is not None else 0
        self.checkpoints = array("Q", [0])  # byte offset of rows 0, STEP, 2*STEP, ...
        self.rows_seen = 0  # complete rows found so far
        self.scanned = 0  # bytes scanned
        self.in_quote = False
        self.lock = threading.Lock()

    @property
    def complete(self) -> bool:
        return self.scanned >= self.size

    @property
    def total_rows(self) -> int | None:
        """Rows in the file (a last line without a newline counts), once fully scanned."""
        if not self.complete:
            return None
        tail = self.size > 0 and self._last_byte() != b"\n"
        return self.rows_seen + (1 if tail else 0)

    def _last_byte(self) -> bytes:
        return self.browser.read(self.entry, self.size - 1, 1)

    def scan_to(self, row: int) -> None:
        """Scan forward until the checkpoint at or before `row` is known (or the file ends)."""
        with self.lock:
            budget = SCAN_LIMIT
            while not self.complete and len(self.checkpoints) * STEP <= row + STEP and budget > 0:
                before = self.scanned
                self._scan_chunk()
                budget -= self.scanned - before

    def _scan_chunk(self) -> None:
        chunk = self.browser.read(self.entry, self.scanned, CHUNK)
        if not chunk:
            self.scanned = self.size
            return
        pattern = _QUOTE_OR_NEWLINE if self.quoting else _NEWLINE
        in_quote, rows, base = self.in_quote, self.rows_seen, self.scanned
        for m in pattern.finditer(chunk):
            if m.group() == b'"':
                in_quote = not in_quote
            elif not in_quote:
                rows += 1
                if rows % STEP == 0:
                    self.checkpoints.append(base + m.end())
        self.in_quote, self.rows_seen = in_quote, rows
        self.scanned = base + len(chunk)

    def span(self, first: int, count: int) -> tuple[int, int, int]:
        """(byte offset to read from, rows to skip there, bytes to read) covering rows
        `first`..`first + count - 1`, reading past their end at most to the next checkpoint."""
        self.scan_to(first + count)
        with self.lock:
            k = min(first // STEP, len(self.checkpoints) - 1)
            start = self.checkpoints[k]
            end_k = (first + count) // STEP + 1
            end = self.checkpoints[end_k] if end_k < len(self.checkpoints) else self.size
        return start, first - k * STEP, min(READ_LIMIT, max(0, end - start))


class RowIndexes:
    """The row indexes of recently viewed text tables (one scan shared by every page)."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str, bool], RowIndex] = OrderedDict()

    def get(self, entry: ManifestEntry, *, quoting: bool) -> RowIndex:
        key = (entry.digest, entry.ref or "", quoting)
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                found = self._kept[key] = RowIndex(self.browser, entry, quoting=quoting)
            self._kept.move_to_end(key)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return found
