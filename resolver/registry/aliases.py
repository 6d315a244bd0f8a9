"""Moving aliases: every alias write is a compare-and-swap on the alias record's etag.

Apart from the version writer because aliases have their own concurrency rule (DESIGN §4): a
version number is taken once by a create-only write, but an alias is rewritten many times by
many writers, so each update reads the record, decides whether anything is left to do, and
swaps on the etag it read; a lost race reads again. `latest` only ever moves forward here (a
slow writer can never move it back); only deleting the version it names moves it back
(`fall_back_latest`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Literal

from artifactfs.errors import AliasMovedError, ObjectNotFoundError, PreconditionFailedError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.names import check_alias
from artifactfs.resolver.records import VersionRecord, now_iso
from artifactfs.resolver.registry.reads import RegistryReader

MAX_RACE_RETRIES = 10_000
ANYWHERE: Literal["anywhere"] = "anywhere"
"""`expected` of an alias update that does not care where the alias is now."""
Expected = int | None | Literal["anywhere"]


class AliasWriter:
    """Alias updates of one store's registry, each by compare-and-swap."""

    def __init__(self, store: Store, reader: RegistryReader) -> None:
        self.store = store
        self.reader = reader

    def apply(self, record: VersionRecord, aliases: Iterable[str]) -> None:
        """Point each of `aliases` at `record` (duplicates once, in order)."""
        for alias in dict.fromkeys(aliases):
            self.set_alias(record, alias)

    def set_alias(
        self, record: VersionRecord, alias: str, *, expected: Expected = ANYWHERE
    ) -> None:
        """Point `alias` at `record` by compare-and-swap. `latest` only moves forward.
        `expected`: the version the caller saw the alias on (None: on none); if it is elsewhere
        now, AliasMovedError and nothing changes (a page's "move prod here" after someone else
        moved prod must not silently undo their move)."""
        if alias != "latest":
            check_alias(alias)

        def settled(current: int | None) -> bool:
            if current is None:
                return False
            return current == record.version or (
                alias == "latest"
                and current > record.version
                and self.reader.version_or_none(record.entity, record.project, record.name, current)
                is not None
            )

        self._swap(record, alias, record.version, settled, "move", expected)

    def remove_alias(
        self, record: VersionRecord, alias: str, *, expected: Expected = ANYWHERE
    ) -> None:
        """Remove `alias` if it still points at `record`: a compare-and-swap to a removed marker,
        so an alias another writer just moved elsewhere is never deleted by mistake."""
        self._swap(
            record, alias, None, lambda current: current != record.version, "remove", expected
        )

    def _swap(
        self,
        record: VersionRecord,
        alias: str,
        target: int | None,
        settled: Callable[[int | None], bool],
        verb: str,
        expected: Expected = ANYWHERE,
    ) -> None:
        """The one alias update loop: read the record, stop if `settled(current)` says nothing
        is left to do, else swap in `target` on the etag read; a lost race reads again."""
        key = keys.alias_key(record.entity, record.project, record.name, alias)
        body = json.dumps({"version": target, "updated_at": now_iso()}).encode()
        for _ in range(MAX_RACE_RETRIES):
            current, etag = self.reader.read_alias(key)
            if expected != ANYWHERE and current != expected and current != target:
                where = "no version" if current is None else f"v{current}"
                raise AliasMovedError(
                    f"alias {alias!r} of {record.qualified_name} is on {where} now, not where "
                    "it was seen: nothing changed"
                )
            if settled(current):
                return
            try:
                self.store.swap(key, body, etag)
                self.reader.invalidate()
                return
            except PreconditionFailedError:
                continue
        raise PreconditionFailedError(
            f"could not {verb} alias {alias!r} of {record.qualified_name}"
        )

    def set_aliases(self, record: VersionRecord, wanted: Iterable[str]) -> list[str]:
        """Make `record`'s aliases equal `wanted` (Artifact.save): add the missing ones, remove
        the dropped ones, each by compare-and-swap. `latest` is the registry's to move, so it is
        neither added nor removed here. Every alias is validated before anything is written."""
        wanted_set = {a for a in dict.fromkeys(wanted) if a != "latest"}
        for alias in wanted_set:
            check_alias(alias)
        self.reader.invalidate()
        current = {a for a in self.reader.version_aliases(record) if a != "latest"}
        for alias in sorted(wanted_set - current):
            self.set_alias(record, alias)
        for alias in sorted(current - wanted_set):
            self.remove_alias(record, alias)
        self.reader.invalidate()
        return self.reader.version_aliases(record)

    def fall_back_latest(self, deleted: VersionRecord) -> None:
        """After `deleted` was tombstoned: point `latest` at the newest remaining version (if
        any). One swap: if it loses, a concurrent commit moved latest forward, which is right."""
        entity, project, name = deleted.entity, deleted.project, deleted.name
        remaining = self.reader.version_numbers(entity, project, name)
        # Newest first, skipping any that a concurrent delete tombstoned since the listing.
        newest = next(
            (
                rec
                for n in reversed(remaining)
                if (rec := self.reader.version_or_none(entity, project, name, n)) is not None
            ),
            None,
        )
        if newest is None:
            return
        key = keys.alias_key(entity, project, name, "latest")
        try:
            _, etag = self.store.get(key)
        except ObjectNotFoundError:
            etag = None
        body = json.dumps({"version": newest.version, "updated_at": now_iso()}).encode()
        try:
            self.store.swap(key, body, etag)
        except PreconditionFailedError:
            pass  # a concurrent commit moved latest forward, which is right too
