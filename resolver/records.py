"""Records stored in the registry: collections, versions, runs, links. Plain dataclasses + JSON.

Fields added later default to what a record without them meant, so records written by older
versions read unchanged; unknown fields (from newer versions) are ignored on read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, TypeVar

from artifactfs.errors import InvalidNameError, InvalidRecordError
from artifactfs.resolver.keys import is_manifest_key
from artifactfs.resolver.names import check_name, shown


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "list[str]": (list,),
    "dict[str, Any]": (dict,),
    "dict[str, Any] | None": (dict, type(None)),
}
"""The field annotations records use -> the JSON types a stored value may have."""


def _check_fields(rec: Any) -> None:
    """Every field of a record read from the store has its declared JSON type (a hostile or
    broken record must fail here, with a named error, not deep in a reader)."""
    what = type(rec).__name__
    for f in fields(rec):
        if f.name == "etag":
            continue
        value = getattr(rec, f.name)
        kinds = _KINDS.get(str(f.type))
        bad = kinds is not None and (
            not isinstance(value, kinds)
            or (isinstance(value, bool) and bool not in kinds)
            or (isinstance(value, list) and not all(isinstance(v, str) for v in value))
        )
        if bad:
            raise InvalidRecordError(f"{what}: field {f.name!r} holds {shown(repr(value))}")


R = TypeVar("R", bound="_StoredRecord")


class _StoredRecord:
    """JSON bytes for the store and back. `etag` (what was read, for compare-and-swap) is not
    stored; unknown fields from newer versions are ignored on read (`_from_dict`)."""

    etag: str | None
    _json_default: Callable[[Any], Any] | None = None

    def to_bytes(self) -> bytes:
        data = asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass
        data.pop("etag")
        return json.dumps(data, sort_keys=True, default=self._json_default).encode()

    @classmethod
    def from_bytes(cls: type[R], raw: bytes, etag: str | None = None) -> R:
        """The record in `raw` (from the store: checked, InvalidRecordError when unusable)."""
        what = cls.__name__
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise InvalidRecordError(f"{what} is not valid JSON: {str(e)[:80]}") from None
        if not isinstance(data, dict):
            raise InvalidRecordError(f"{what} is not a JSON object")
        try:
            rec: R = _from_dict(cls, data)
        except TypeError as e:  # a required field is missing
            raise InvalidRecordError(f"{what}: {e}") from None
        _check_fields(rec)
        rec.check()
        rec.etag = etag
        return rec

    def check(self) -> None:
        """Rules beyond field types (subclasses); raise InvalidRecordError."""


@dataclass
class CollectionRecord(_StoredRecord):
    """A collection (W&B: artifact sequence or portfolio). Created once (create-only); its
    description, tags and state change by compare-and-swap (`etag`: what we read, not stored).
    `state` is ACTIVE, DELETED (every version tombstoned; a later commit revives it) or RENAMED
    (its versions were copied to `renamed_to`, which is where commits and reads go now)."""

    entity: str
    project: str
    name: str
    type: str
    created_at: str = field(default_factory=now_iso)
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    state: str = "ACTIVE"
    renamed_to: str | None = None
    updated_at: str | None = None
    etag: str | None = field(default=None, compare=False, repr=False)


@dataclass
class VersionRecord(_StoredRecord):
    """One committed version. Created once (create-only); description/metadata/state may later
    change through compare-and-swap (`etag` remembers what we read, it is not stored)."""

    entity: str
    project: str
    name: str
    version: int
    type: str
    digest: str
    manifest_key: str
    size: int
    file_count: int
    id: str
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    state: str = "COMMITTED"
    logged_by: str | None = None
    source: dict[str, Any] | None = None
    base_version: int | None = None
    tags: list[str] = field(default_factory=list)
    ttl: int | None = None
    """Seconds after `created_at` when the version expires (W&B's TTL); None: never. Expired
    versions are tombstoned by `artifactfs ttl-sweep` (resolver/ttl.py), not at read time."""
    block_digests: str | None = None
    """SHA-256 (hex) of the version's block-digest record (resolver/blockrecord.py), which
    lets ranged reads of its big entries be checked; None: it has none (verified whole)."""
    etag: str | None = field(default=None, compare=False, repr=False)

    def check(self) -> None:
        try:
            for part, what in ((self.entity, "entity"), (self.project, "project")):
                check_name(part, what)
            check_name(self.name, "name")
        except InvalidNameError as e:
            raise InvalidRecordError(f"version record: {e}") from None
        where = f"version record {self.entity}/{self.project}/{self.name}:v{self.version}"
        if self.version < 0 or self.size < 0 or self.file_count < 0:
            raise InvalidRecordError(f"{where}: a negative version, size or file count")
        if not is_manifest_key(self.manifest_key):
            raise InvalidRecordError(
                f"{where}: manifest_key {shown(self.manifest_key)} is not a manifest key "
                "of the registry"
            )

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def full_name(self) -> str:
        return f"{self.qualified_name}:v{self.version}"

    @property
    def link_source(self) -> dict[str, Any] | None:
        """The version this one links (a portfolio version made by `link()`), else None.
        `source` also holds other provenance (a draft commit records its producer), so only a
        source naming a version counts."""
        src = self.source
        if src and all(k in src for k in ("entity", "project", "name", "version", "id")):
            return src
        return None


@dataclass
class RunRecord(_StoredRecord):
    """A run: the unit of lineage, plus what W&B's public Run shows (config, summary, state,
    tags). `logged`/`used` hold `entity/project/name:vN` strings. The run writes it by
    compare-and-swap (`etag`: what it read; a resumed run in another process may write too);
    its history rows live apart, in create-only chunks (resolver/runs.py)."""

    id: str
    entity: str
    project: str
    name: str | None = None
    job_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    logged: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    state: str = "finished"
    """W&B's run states: running, finished, failed (finished with an exception or a non-zero
    exit code); crashed is what a reader may conclude from a stale `heartbeat_at`. A live run
    writes `running` at start; records written without a state (older versions, draft
    commits) read as finished."""
    summary: dict[str, Any] = field(default_factory=dict)
    heartbeat_at: str | None = None
    exit_code: int | None = None
    etag: str | None = field(default=None, compare=False, repr=False)
    _json_default = str  # config and summary hold what users log: never fail to write them


@dataclass
class LinkRecord(_StoredRecord):
    """Which version of a portfolio links one source version (create-only, one per source):
    concurrent links of one source agree on the version the record names. `version` None
    means the link was removed (unlink), by compare-and-swap."""

    source_id: str
    version: int | None
    created_at: str = field(default_factory=now_iso)
    etag: str | None = field(default=None, compare=False, repr=False)
