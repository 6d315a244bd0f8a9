"""The artifact manifest: path -> entry, in W&B's manifest v1 format (DESIGN §5).

The JSON layout and the artifact digest follow W&B exactly, so the same files give the same
digest in both systems. Entries are plain dataclasses; staging-only fields (`local_path`) never
reach the JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from artifactfs.errors import InvalidDigestError
from artifactfs.resolver.manifest_check import check_manifest, load_json
from artifactfs.resolver.names import check_entry_path, shown

EXECUTABLE = "executable"
"""Key of an entry's `extra`: true when the file is executable (kept by drafts, restored by
downloads, checkouts and the mount; not part of the digest, as in W&B, whose `extra` holds
per-entry fields such as a reference's `etag`)."""
STORAGE_POLICY = "wandb-storage-policy-v1"
STORAGE_POLICY_CONFIG = {"storageLayout": "V2"}
DIGEST_HEADER = b"wandb-artifact-manifest-v1\n"
HASH_CHUNK = 1 << 20
ARTIFACT_URL = "artifact://"
"""Scheme of URLs naming a file of a logged version (`artifact://entity/project/name:vN/path`):
what `ref_url()` returns, what the fsspec file system opens, and the `ref` of an entry added
from another artifact, whose bytes are stored in the registry under its digest."""


def md5_b64_of_file(
    path: str, chunk: int = HASH_CHUNK, progress: Callable[[int], None] | None = None
) -> str:
    """W&B's entry digest: base64 of the MD5 of the file's bytes (`progress(n)` per block)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            if progress is not None:
                progress(len(block))
    return base64.b64encode(h.digest()).decode("ascii")


def md5_b64_of_bytes(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def artifact_url(entity: str, project: str, name: str, version: int, path: str) -> str:
    """The `artifact://` URL of one file of one version (pinned: `vN`, never an alias)."""
    return f"{ARTIFACT_URL}{entity}/{project}/{name}:v{version}/{path}"


def b64_to_hex(digest_b64: str, path: str | None = None) -> str:
    """Base64 MD5 (manifest form) -> 32 hex chars (blob key form).

    InvalidDigestError (one line, naming the entry `path` when given) unless `digest_b64` is
    the base64 of 16 bytes: a stored file's digest is its MD5, and it names the blob."""
    try:
        raw = base64.b64decode(digest_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        where = f" of {shown(path)}" if path is not None else ""
        raise InvalidDigestError(
            f"digest {shown(str(digest_b64))}{where} is not a base64 MD5 "
            "(24 characters, e.g. 'sZRqySSS0jR8YjW00mERhA==')"
        )
    return raw.hex()


def hex_to_b64(digest_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(digest_hex)).decode("ascii")


@dataclass
class ManifestEntry:
    """One file of an artifact.

    `digest` is the base64 MD5 of the bytes for stored content; for references (`ref` set) it is
    what the scheme provides (ETag, md5, or a hash of the URI when checksum is off).
    """

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    birth_artifact_id: str | None = None
    local_path: str | None = field(default=None, repr=False, compare=False)
    skip_cache: bool = field(default=False, repr=False, compare=False)
    """W&B's entry field (`add_file(skip_cache=True)`): kept on the entry, never written to the
    manifest (W&B omits it too); uploads here never fill the cache either way."""

    @property
    def is_reference(self) -> bool:
        return self.ref is not None

    @property
    def executable(self) -> bool:
        return bool(self.extra.get(EXECUTABLE))

    @property
    def file_mode(self) -> int:
        """Permission bits of a local copy: 0755 for executables, else 0644."""
        return 0o755 if self.executable else 0o644

    @property
    def stored(self) -> bool:
        """True when the registry holds the bytes under `digest` (an MD5): stored content, or
        an entry of another artifact (`artifact://` ref). False for external references."""
        return self.ref is None or self.ref.startswith(ARTIFACT_URL)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest}
        if self.birth_artifact_id:
            out["birthArtifactID"] = self.birth_artifact_id
        if self.ref is not None:
            out["ref"] = self.ref
        if self.extra:
            out["extra"] = self.extra
        if self.size is not None:
            out["size"] = self.size
        return out

    @classmethod
    def from_json(cls, path: str, data: dict[str, Any]) -> ManifestEntry:
        return cls(
            path=check_entry_path(path),
            digest=str(data["digest"]),
            size=data.get("size"),
            ref=data.get("ref"),
            extra=data.get("extra") or {},
            birth_artifact_id=data.get("birthArtifactID"),
        )


class Manifest:
    """An ordered mapping path -> ManifestEntry with W&B v1 (de)serialization and digest."""

    def __init__(self, entries: Iterable[ManifestEntry] = ()) -> None:
        self.entries: dict[str, ManifestEntry] = {}
        for e in entries:
            self.add(e)

    def add(self, entry: ManifestEntry) -> ManifestEntry:
        entry.path = check_entry_path(entry.path)
        self.entries[entry.path] = entry
        return entry

    def remove(self, path: str) -> ManifestEntry:
        return self.entries.pop(path)

    def get(self, path: str) -> ManifestEntry | None:
        return self.entries.get(path)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries.values())

    def __contains__(self, path: object) -> bool:
        return path in self.entries

    @property
    def size(self) -> int:
        return sum(e.size or 0 for e in self.entries.values())

    def digest(self) -> str:
        """W&B's artifact digest: hex MD5 over the header and sorted `path:digest` lines."""
        h = hashlib.md5()
        h.update(DIGEST_HEADER)
        for path in sorted(self.entries):
            h.update(f"{path}:{self.entries[path].digest}\n".encode())
        return h.hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(STORAGE_POLICY_CONFIG),
            "contents": {p: self.entries[p].to_json() for p in sorted(self.entries)},
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=False).encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """A manifest from its JSON, refused whole (InvalidManifestError, InvalidPathError) if
        it breaks any rule of resolver/manifest_check.py: the mount applies the same ones."""
        m = cls()
        for path, raw in check_manifest(data).items():
            m.entries[path] = ManifestEntry.from_json(path, raw)
        return m

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        return cls.from_json(load_json(raw))
