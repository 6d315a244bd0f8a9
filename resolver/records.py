"""Records stored in the registry: collections, versions, runs. Plain dataclasses + JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class CollectionRecord:
    entity: str
    project: str
    name: str
    type: str
    created_at: str = field(default_factory=now_iso)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CollectionRecord:
        return _from_dict(cls, json.loads(raw))


@dataclass
class VersionRecord:
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
    etag: str | None = field(default=None, compare=False, repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def full_name(self) -> str:
        return f"{self.qualified_name}:v{self.version}"

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data.pop("etag")
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, etag: str | None = None) -> VersionRecord:
        rec = _from_dict(cls, json.loads(raw))
        rec.etag = etag
        return rec


@dataclass
class RunRecord:
    """A run: the unit of lineage. `logged`/`used` hold `entity/project/name:vN` strings."""

    id: str
    entity: str
    project: str
    name: str | None = None
    job_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    logged: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RunRecord:
        return _from_dict(cls, json.loads(raw))
