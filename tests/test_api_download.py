"""download() goes through the cache, and a hostile manifest in the store writes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import artifactfs as af
from artifactfs.errors import InvalidPathError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store


class CountingStore(Store):
    """Delegates everything; counts reads of content (blob) keys."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.blob_reads = 0

    def _count(self, key: str) -> None:
        if key.startswith("blobs/"):
            self.blob_reads += 1

    def get(self, key):
        self._count(key)
        return self.inner.get(key)

    def get_range(self, key, start, length):
        self._count(key)
        return self.inner.get_range(key, start, length)

    def download_to(self, key, fileobj, progress=None):
        self._count(key)
        return self.inner.download_to(key, fileobj, progress)

    def head(self, key):
        return self.inner.head(key)

    def list(self, prefix):
        return self.inner.list(prefix)

    def list_children(self, prefix):
        return self.inner.list_children(prefix)

    def put(self, key, data):
        return self.inner.put(key, data)

    def put_file(self, key, path, progress=None, md5_hex=None, **kwargs):
        return self.inner.put_file(key, path, progress, md5_hex, **kwargs)

    def create(self, key, data):
        return self.inner.create(key, data)

    def swap(self, key, data, expected_etag):
        return self.inner.swap(key, data, expected_etag)

    def delete(self, key):
        return self.inner.delete(key)

    def check_writable(self):
        return self.inner.check_writable()


def _counting_api() -> tuple[af.Api, CountingStore]:
    api = af.Api(overrides={"project": "p"})
    counting = CountingStore(api.resolver.store)
    api.resolver.store = counting
    api.resolver.registry.store = counting
    return api, counting


def _log(tmp_path: Path, files: dict[str, bytes], name: str = "ds") -> af.Artifact:
    with af.init(entity="acme", project="p") as run:
        art = af.Artifact(name, type="dataset")
        for path, data in files.items():
            local = tmp_path / "src" / path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
            art.add_file(local, name=path)
        return run.log_artifact(art)


def test_cached_version_reads_no_content_from_backend(registry_url, tmp_path):
    _log(tmp_path, {"a.bin": b"a" * 1000, "d/b.bin": b"b" * 2000})
    api, counting = _counting_api()
    art = api.artifact("ds:v0")
    art.download(tmp_path / "first")
    assert counting.blob_reads == 2
    seen: list[int] = []
    art.download(tmp_path / "second", progress=seen.append)
    art.checkout(tmp_path / "third")
    assert counting.blob_reads == 2  # everything came from the cache
    assert (tmp_path / "second" / "d" / "b.bin").read_bytes() == b"b" * 2000
    assert seen == []  # nothing was transferred, so no progress was reported


def test_skip_cache_writes_straight_into_root(registry_url, tmp_path):
    _log(tmp_path, {"a.bin": b"a" * 1000, "d/b.bin": b"b" * 2000})
    api, counting = _counting_api()
    art = api.artifact("ds:v0")
    root = Path(art.download(tmp_path / "direct", skip_cache=True))
    assert (root / "d" / "b.bin").read_bytes() == b"b" * 2000
    assert counting.blob_reads == 2
    assert api.resolver.cache.info().objects == 0  # nothing was kept in the shared cache
    art.download(tmp_path / "again", skip_cache=True)
    assert counting.blob_reads == 4  # and so nothing can be served from it


def _plant(api: af.Api, contents: dict) -> None:
    """Write a version whose manifest is hand-crafted, as an attacker with store access could."""
    store = api.resolver.store
    raw = json.dumps(
        {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": contents,
        }
    ).encode()
    mkey = keys.manifest_key(hashlib.md5(raw).hexdigest())
    store.put(mkey, raw)
    good = api.artifact("ds:v0")._record
    rec = json.loads(good.to_bytes())
    rec.update(version=1, manifest_key=mkey, id="f" * 32, digest="e" * 32)
    store.create(keys.version_key("acme", "p", "ds", 1), json.dumps(rec).encode())


@pytest.mark.parametrize(
    "hostile",
    ["../escape.txt", "/tmp/abs.txt", "ok/../../escape.txt", "nul\x00.txt"],
)
def test_hostile_manifest_writes_nothing(registry_url, tmp_path, hostile):
    good = _log(tmp_path, {"a.bin": b"data"})
    entry = good.manifest.get("a.bin").to_json()
    api = af.Api(overrides={"project": "p"})
    _plant(api, {"a.bin": entry, hostile: entry})
    root = tmp_path / "out" / "root"
    with pytest.raises(InvalidPathError):
        api.artifact("ds:v1").download(root)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.txt"))
    assert not Path("/tmp/abs.txt").exists()


def test_manifest_clash_and_symlink_escape_write_nothing(registry_url, tmp_path):
    good = _log(tmp_path, {"a.bin": b"data"})
    entry = good.manifest.get("a.bin").to_json()
    api = af.Api(overrides={"project": "p"})
    _plant(api, {"a.bin": entry, "a.bin/inner": entry, "z.bin": entry})
    with pytest.raises(InvalidPathError):
        api.artifact("ds:v1").download(tmp_path / "clash")
    # refused when the manifest is read (resolver/manifest_check.py), before any write
    assert not (tmp_path / "clash").exists() or not any((tmp_path / "clash").iterdir())

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    art2 = _log(tmp_path, {"link/x.bin": b"payload", "y.bin": b"y"}, name="ds2")
    with pytest.raises(InvalidPathError):
        api.artifact("ds2:v0").download(root)
    assert list(outside.iterdir()) == [] and not (root / "y.bin").exists()
    assert art2.version == "v0"


def test_verify_skips_references(tmp_path):
    from artifactfs.resolver.download import verify_dir
    from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_bytes

    (tmp_path / "local.txt").write_text("x")
    manifest = Manifest(
        [
            ManifestEntry("local.txt", md5_b64_of_bytes(b"x"), 1),
            ManifestEntry("remote.bin", "etag", 10, ref="s3://bucket/remote.bin"),
        ]
    )
    assert verify_dir(manifest, tmp_path) == 1
    (tmp_path / "local.txt").write_text("y")
    with pytest.raises(ValueError):
        verify_dir(manifest, tmp_path)
