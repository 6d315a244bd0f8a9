"""Helpers shared by the draft tests (no tests here): seeding, store counting, invariants."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from artifactfs.resolver import keys
from artifactfs.resolver.manifest import Manifest, ManifestEntry, b64_to_hex, md5_b64_of_file
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.resolver import Resolver


class CountingStore:
    """Wraps a Store and counts content uploads: `put_file` of blobs the store did not hold
    (a blob it already holds is refused with PreconditionFailedError and not counted)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.blob_puts: list[str] = []

    def put_file(self, key: str, *args: Any, **kwargs: Any) -> str:
        etag = self._inner.put_file(key, *args, **kwargs)
        if key.startswith("blobs/"):
            self.blob_puts.append(key)
        return etag

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def seed(
    resolver: Resolver, files: dict[str, bytes], name: str = "mnist", tmp: Path | None = None
) -> VersionRecord:
    """Commit `files` as a new version of acme/mnist/<name>."""
    tmp = tmp or Path(resolver.config.cache_dir).parent / "seed"
    entries = []
    for path, data in files.items():
        disk = tmp / name / path
        disk.parent.mkdir(parents=True, exist_ok=True)
        disk.write_bytes(data)
        entries.append(
            ManifestEntry(path, md5_b64_of_file(str(disk)), len(data), local_path=str(disk))
        )
    return resolver.registry.commit("acme", "mnist", name, "dataset", Manifest(entries))


def version_files(resolver: Resolver, record: VersionRecord) -> dict[str, bytes]:
    manifest = resolver.registry.manifest(record)
    return {e.path: resolver.fetch(e).read_bytes() for e in manifest}


def check_registry_invariants(resolver: Resolver) -> int:
    """Every version record has its manifest and every blob it names, with the right size.
    Returns the number of version records checked."""
    store = resolver.store
    checked = 0
    for key in list(store.list(keys.REGISTRY + "/")):
        if "/versions/" not in key or keys.parse_version_file(key.rsplit("/", 1)[1]) is None:
            continue
        raw, _ = store.get(key)
        record = VersionRecord.from_bytes(raw)
        manifest_raw, _ = store.get(record.manifest_key)
        manifest = Manifest.from_bytes(manifest_raw)
        assert manifest.digest() == record.digest, key
        for entry in manifest:
            if entry.ref is None:
                info = store.head(keys.blob_key(b64_to_hex(entry.digest)))
                assert info is not None, f"{key}: blob of {entry.path} missing"
                assert info.size == entry.size, f"{key}: blob of {entry.path} truncated"
        checked += 1
    return checked


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` (relative path -> bytes)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for fn in files:
            full = Path(dirpath) / fn
            out[str(full.relative_to(root))] = full.read_bytes()
    return out
