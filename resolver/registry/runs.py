"""Runs in the registry: their records (compare-and-swap) and their history (create-only chunks).

A run's record (`runs/<entity>/<project>/<id>.json`) holds identity, config, summary, state
and lineage. It is written by compare-and-swap on the etag last read, so two processes of one
resumed run never lose each other's lineage: a lost race re-reads and applies its change again.

History can be long (a training loop logs every step) and the S3 backend has no append, so rows
are never rewritten: each flush writes the rows logged since the previous one as a new
create-only chunk `history/<seq>.jsonl` (one JSON object per line). A run's history therefore
costs O(rows) bytes and O(rows / rows-per-chunk) requests in total, and reading it back is one
listing plus one GET per chunk. Chunk numbers are taken like version numbers: a create-only
write at the next number, a lost race (a second writer of the same run) moves on to the next.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from artifactfs.errors import ObjectNotFoundError, PreconditionFailedError, UsageError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.names import check_name
from artifactfs.resolver.records import RunRecord, now_iso

log = logging.getLogger(__name__)

MAX_RACE_RETRIES = 1_000


class RunStore:
    """Read and write run records and history chunks in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._next_chunk: dict[tuple[str, str, str], int] = {}

    # -- records ---------------------------------------------------------------------------------
    def load(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        try:
            raw, etag = self.store.get(keys.run_key(entity, project, run_id))
        except ObjectNotFoundError:
            return None
        return RunRecord.from_bytes(raw, etag)

    def create(self, record: RunRecord) -> RunRecord:
        """Write a new run's record; PreconditionFailedError if a run with that id exists."""
        for part, what in ((record.entity, "entity"), (record.project, "project")):
            check_name(part, what)
        check_name(record.id, "run id")
        record.heartbeat_at = now_iso()
        record.etag = self.store.create(
            keys.run_key(record.entity, record.project, record.id), record.to_bytes()
        )
        return record

    def update(self, record: RunRecord, change: Callable[[RunRecord], None]) -> RunRecord:
        """Apply `change` to the stored record by compare-and-swap and return what was stored.

        `change` is applied to `record` first (the caller's copy, usually current); when
        another writer got there first, the stored record is re-read and `change` applied to
        it again, so both writers' changes survive."""
        key = keys.run_key(record.entity, record.project, record.id)
        current = record
        for _ in range(MAX_RACE_RETRIES):
            change(current)
            current.heartbeat_at = now_iso()
            try:
                current.etag = self.store.swap(key, current.to_bytes(), current.etag)
                return current
            except PreconditionFailedError:
                fresh = self.load(record.entity, record.project, record.id)
                if fresh is None:
                    raise UsageError(
                        f"run {record.entity}/{record.project}/{record.id} was deleted"
                    ) from None
                current = fresh
        raise PreconditionFailedError(f"could not update run {record.id}: too many races")

    def runs(self, entity: str, project: str) -> list[RunRecord]:
        """Every run of a project, oldest first (by created_at, then id)."""
        check_name(entity, "entity")
        check_name(project, "project")
        prefix = keys.runs_prefix(entity, project)
        out = []
        for child in self.store.list_children(prefix):
            if not child.endswith(".json"):
                continue
            rec = self.load(entity, project, child[: -len(".json")])
            if rec is not None:
                out.append(rec)
        return sorted(out, key=lambda r: (r.created_at, r.id))

    # -- history ---------------------------------------------------------------------------------
    def _chunk_numbers(self, entity: str, project: str, run_id: str) -> list[int]:
        prefix = keys.history_prefix(entity, project, run_id)
        found = (keys.parse_history_chunk(n) for n in self.store.list_children(prefix))
        return sorted(n for n in found if n is not None)

    def append_history(
        self, entity: str, project: str, run_id: str, rows: Iterable[dict[str, Any]]
    ) -> int:
        """Store `rows` as one new chunk; returns its number (-1 when there was nothing)."""
        body = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
        if not body:
            return -1
        ident = (entity, project, run_id)
        n = self._next_chunk.get(ident)
        if n is None:  # first flush of this process: continue after what a resumed run wrote
            numbers = self._chunk_numbers(entity, project, run_id)
            n = numbers[-1] + 1 if numbers else 0
        data = body.encode()
        for _ in range(MAX_RACE_RETRIES):
            try:
                self.store.create(keys.history_chunk_key(entity, project, run_id, n), data)
                self._next_chunk[ident] = n + 1
                return n
            except PreconditionFailedError:
                n += 1
        raise PreconditionFailedError(f"could not store history of run {run_id}")

    def history(self, entity: str, project: str, run_id: str) -> Iterator[dict[str, Any]]:
        """Every stored row of a run's history, in the order it was logged."""
        for n in self._chunk_numbers(entity, project, run_id):
            try:
                raw, _ = self.store.get(keys.history_chunk_key(entity, project, run_id, n))
            except ObjectNotFoundError:
                continue
            for line in raw.decode().splitlines():
                if line.strip():
                    yield json.loads(line)
