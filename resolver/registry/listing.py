"""The listing index of a collection: its version records in pages, so listing costs a few reads.

WHY: listing a collection used to cost one request per version (a LIST, then a GET of every
record to tell committed from deleted): 10,000 versions took 38 s on S3. The index keeps a copy
of every record in pages of PAGE versions, `registry/<e>/<p>/<n>/index/p<K>.json`:

    {"format": "artifactfs-version-page-v1",
     "records": {"<N>": ["<record etag>", "<record JSON, byte for byte>"], ...},
     "unsettled": {"<N>": ["<token>", ...]}}

so a listing reads the pages (in parallel) and little else, whatever the history's length.

The index is only a cache of the version records, which stay the truth; it is written with the
same compare-and-swap as aliases (DESIGN §4), and readers never trust it beyond what these rules
guarantee (docs/SEMANTICS.md, "Listing index"):

* Versions are numbered densely: a writer creates v<N+1> only after seeing v<N> (create-only at
  the first free number after `latest`, rolled forward). So a reader walks N = 0, 1, 2, ... and
  takes v<N> from its page when the page has it, else reads the record itself; the first
  number with no record ends the collection. A page that lags (a writer crashed between its
  record and its page update) costs a few direct reads, never a missed version; a copy exists
  only after its record did, so the index never names a version that does not exist.
* A record that changes after its commit (description, metadata, deletion) is first marked
  unsettled in its page (a token added by CAS), then swapped, then copied back and the token
  removed (one CAS that also re-reads the record). Readers read unsettled versions directly.
  So a page's copy can differ from its record only while a token is present: a crashed
  updater leaves its token (and a direct read per listing), never a stale or deleted version
  listed as current.
* Writers add their own version after the commit point, fill holes in that page, and, when they
  start a page, build earlier pages that are missing (a collection from before the index).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from artifactfs.errors import ObjectNotFoundError, PreconditionFailedError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.records import VersionRecord

log = logging.getLogger(__name__)

PAGE = 250
"""Versions per page: a page of records is ~100-150 KB, a commit rewrites one."""
FORMAT = "artifactfs-version-page-v1"
PREFETCH = 16
"""Pages (or, past the index, records) read at once."""
MAX_CAS = 1000


class Page:
    """One page: record copies (etag, JSON text) and unsettled tokens by version number."""

    def __init__(self, data: dict[str, Any] | None = None, etag: str | None = None) -> None:
        data = data or {}
        self.etag = etag
        self.records: dict[int, list[str]] = {int(n): v for n, v in data.get("records", {}).items()}
        self.unsettled: dict[int, list[str]] = {
            int(n): list(v) for n, v in data.get("unsettled", {}).items() if v
        }

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "records": {str(n): self.records[n] for n in sorted(self.records)},
                "unsettled": {str(n): self.unsettled[n] for n in sorted(self.unsettled)},
            },
            separators=(",", ":"),
        ).encode()

    def settled(self, n: int) -> VersionRecord | None:
        """The copy of v<n> when it can be trusted (present, no update in flight)."""
        if n in self.unsettled or n not in self.records:
            return None
        etag, text = self.records[n]
        return VersionRecord.from_bytes(text.encode(), etag)


class VersionListing:
    """Reads and maintains the listing index of one store's collections."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading --------------------------------------------------------------------------------
    def _page(self, entity: str, project: str, name: str, k: int) -> Page | None:
        try:
            raw, etag = self.store.get(keys.version_page_key(entity, project, name, k))
        except ObjectNotFoundError:
            return None
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return Page(data, etag)
        except (ValueError, TypeError, AttributeError) as e:  # unusable: read the records
            log.warning("listing page %d of %s/%s/%s ignored: %s", k, entity, project, name, e)
            return None

    def _raw(self, entity: str, project: str, name: str, n: int) -> list[str] | None:
        """[etag, JSON text] of v<n>'s record, as stored (the page keeps it byte for byte)."""
        try:
            raw, etag = self.store.get(keys.version_key(entity, project, name, n))
        except ObjectNotFoundError:
            return None
        return [etag, raw.decode()]

    def _record(self, entity: str, project: str, name: str, n: int) -> VersionRecord | None:
        copy = self._raw(entity, project, name, n)
        return None if copy is None else VersionRecord.from_bytes(copy[1].encode(), copy[0])

    def _parallel(self, fn: Callable[[int], Any], items: range) -> list[Any]:
        workers = max(1, min(PREFETCH, self.store.concurrency, len(items)))
        if workers == 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    def records(self, entity: str, project: str, name: str) -> dict[int, VersionRecord]:
        """Every version record of a collection (deleted ones included), by number.

        Pages and, past them, records are read in batches that double (1, 2, 4 ... PREFETCH),
        so a small collection costs two requests (its page, the miss that ends it) and 10,000
        versions about forty, in a handful of round trips."""
        pages: dict[int, Page | None] = {}
        direct: dict[int, VersionRecord | None] = {}
        out: dict[int, VersionRecord] = {}
        page_batch = direct_batch = 1
        n = 0
        while True:
            k = n // PAGE
            if k not in pages:
                previous = pages.get(k - 1)
                size = page_batch if k == 0 or (previous and len(previous.records) >= PAGE) else 1
                batch = range(k, k + size)
                got = self._parallel(lambda j: self._page(entity, project, name, j), batch)
                pages.update(zip(batch, got, strict=True))
                page_batch = min(2 * page_batch, PREFETCH)
                if k == 0 and got[0] is None:
                    direct[0] = self._record(entity, project, name, 0)
                    if direct[0] is not None:  # versions but no index: from before the index
                        return self._without_index(entity, project, name)
            page = pages[k]
            record = page.settled(n) if page is not None else None
            if record is None:
                if n not in direct:  # past the index (it lags) or unsettled: read records
                    batch = range(n, n + direct_batch)
                    got = self._parallel(lambda m: self._record(entity, project, name, m), batch)
                    direct.update(zip(batch, got, strict=True))
                    direct_batch = min(2 * direct_batch, PREFETCH)
                record = direct[n]
                if record is None:
                    return out  # dense numbering: the first missing record ends it
            else:
                direct_batch = 1
            out[n] = record
            n += 1

    def _without_index(self, entity: str, project: str, name: str) -> dict[int, VersionRecord]:
        """A collection from before the index: list the records, read them in parallel."""
        prefix = keys.versions_prefix(entity, project, name)
        numbers = sorted(
            n
            for n in map(keys.parse_version_file, self.store.list_children(prefix))
            if n is not None
        )
        got = self._parallel_list(lambda m: self._record(entity, project, name, m), numbers)
        return {n: r for n, r in zip(numbers, got, strict=True) if r is not None}

    def _parallel_list(self, fn: Callable[[int], Any], items: list[int]) -> list[Any]:
        if len(items) <= 1:
            return [fn(i) for i in items]
        workers = max(1, min(PREFETCH, self.store.concurrency, len(items)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    # -- writing --------------------------------------------------------------------------------
    def _swap_page(
        self, entity: str, project: str, name: str, k: int, change: Callable[[Page], bool]
    ) -> bool:
        """Apply `change` to page k by compare-and-swap (a lost race reads again); `change`
        returns False when there is nothing to write. True if the page was created."""
        key = keys.version_page_key(entity, project, name, k)
        for _ in range(MAX_CAS):
            page = self._page(entity, project, name, k) or Page()
            created = page.etag is None
            if not change(page):
                return False
            try:
                self.store.swap(key, page.to_bytes(), page.etag)
                return created
            except PreconditionFailedError:
                continue
        raise PreconditionFailedError(f"could not update {key}")

    def _fill(self, page: Page, entity: str, project: str, name: str, below: int) -> bool:
        """Copy into `page` the records it lacks from its first number up to `below` (a writer
        that crashed before its page update, or a collection from before the index)."""
        missing = [m for m in range(below // PAGE * PAGE, below) if m not in page.records]
        found = self._parallel_list(lambda m: self._raw(entity, project, name, m), missing)
        for m, copy in zip(missing, found, strict=True):
            if copy is not None:
                page.records[m] = copy
        return bool(missing)

    def add(self, record: VersionRecord) -> None:
        """After v<N>'s commit point: copy it (and any record missing below it in its page)."""
        self._add(record, complete_earlier=True)

    def _add(self, record: VersionRecord, *, complete_earlier: bool) -> None:
        e, p, name, n = record.entity, record.project, record.name, record.version
        k = n // PAGE

        def change(page: Page) -> bool:
            filled = self._fill(page, e, p, name, n)
            if n in page.records:
                return filled
            page.records[n] = [record.etag or "", record.to_bytes().decode()]
            return True

        if self._swap_page(e, p, name, k, change) and k > 0 and complete_earlier:
            self._complete_earlier_pages(e, p, name, k)

    def _complete_earlier_pages(self, entity: str, project: str, name: str, upto: int) -> None:
        """A page was just started: complete the ones before it (legacy collections, crashes),
        so listings read pages, not records."""
        pages = self._parallel_list(
            lambda j: self._page(entity, project, name, j), list(range(upto))
        )
        for j, page in enumerate(pages):
            if page is None or len(page.records) < PAGE:
                last = self._record(entity, project, name, j * PAGE + PAGE - 1)
                if last is not None:
                    self._add(last, complete_earlier=False)  # fills the page below it

    def begin_update(self, record: VersionRecord) -> str:
        """Mark v<N> unsettled before its record changes; returns the token to settle."""
        token = uuid.uuid4().hex

        def change(page: Page) -> bool:
            page.unsettled.setdefault(record.version, []).append(token)
            return True

        self._swap_page(record.entity, record.project, record.name, record.version // PAGE, change)
        return token

    def settle(self, record: VersionRecord, token: str) -> None:
        """After the record changed: copy it back (re-read inside each attempt, so the copy is
        never older than the page it goes into) and remove our token."""
        e, p, name, n = record.entity, record.project, record.name, record.version

        def change(page: Page) -> bool:
            self._fill(page, e, p, name, n)
            current = self._raw(e, p, name, n)
            if current is not None:
                page.records[n] = current
            tokens = [t for t in page.unsettled.get(n, []) if t != token]
            if tokens:
                page.unsettled[n] = tokens
            else:
                page.unsettled.pop(n, None)
            return True

        self._swap_page(e, p, name, n // PAGE, change)
