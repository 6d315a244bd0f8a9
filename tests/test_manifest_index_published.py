"""Big manifests get their compact index built at commit and stored beside them; mounts fetch
it instead of parsing the JSON, but check it exactly like a manifest: a hostile stored index is
refused and the version is indexed from its manifest instead."""

from __future__ import annotations

import array
import itertools
import json
import os

import pytest
from mountutil import commit_files, mounted, open_registry

from artifactfs.resolver import index_check, keys, manifest_index
from artifactfs.resolver.registry import commit as registry_commit

pytestmark = pytest.mark.fuse

FILES = {f"d{i % 3}/f{i}.txt": f"file {i}".encode() for i in range(6)}


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(registry_commit, "INDEX_AT_COMMIT_ENTRIES", 5)


def _index_key(record):
    return keys.manifest_index_key(record.manifest_key)


def _stats(m):
    return json.loads((m.path / ".artifactfs" / "stats.json").read_text())


def _counter(stats, name):
    """Find a counter wherever the stats document nests it."""
    if isinstance(stats, dict):
        if name in stats:
            return stats[name]
        for v in stats.values():
            found = _counter(v, name)
            if found is not None:
                return found
    return None


def test_only_big_manifests_get_an_index(tmp_path, small_threshold):
    res = open_registry(str(tmp_path / "registry"))
    small = commit_files(res.registry, tmp_path, "small", dict(list(FILES.items())[:4]))
    big = commit_files(res.registry, tmp_path, "big", FILES)
    assert res.store.head(_index_key(small)) is None
    assert res.store.head(_index_key(big)) is not None
    fetched = tmp_path / "got.idx"
    assert res.registry.fetch_manifest_index(big, fetched)
    index = manifest_index.ManifestIndex(fetched)
    index_check.check_untrusted(index)
    assert sorted(index.path(i) for i in range(len(index))) == sorted(FILES)
    assert not res.registry.fetch_manifest_index(small, tmp_path / "none.idx")
    assert not (tmp_path / "none.idx").exists()
    res.close()


def test_mount_uses_the_stored_index(tmp_path, small_threshold):
    url = str(tmp_path / "registry")
    res = open_registry(url)
    commit_files(res.registry, tmp_path, "big", FILES)
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/big:v0"
        assert sorted(os.listdir(d)) == ["d0", "d1", "d2"]
        assert (d / "d1/f4.txt").read_bytes() == b"file 4"
        stats = _stats(m)
        assert _counter(stats, "indexes_fetched") == 1
        assert _counter(stats, "indexes_built") == 0
    res.close()


def _raw_index(paths: list[bytes], digest: bytes) -> bytes:
    """An index file in the on-disk format, with whatever paths we like (the builder would
    refuse these): what a hostile writer of the store could put there."""
    paths = sorted(paths)
    metas = [digest] * len(paths)
    n = len(paths)
    pathoff = array.array("Q", itertools.accumulate(map(len, paths), initial=0))
    metaoff = array.array("Q", itertools.accumulate(map(len, metas), initial=0))
    sizes = array.array("q", [1] * n)
    path_blob, meta_blob = b"".join(paths), b"".join(metas)
    head = manifest_index._HEADER
    o_po = head.size
    o_mo = o_po + 8 * (n + 1)
    o_sz = o_mo + 8 * (n + 1)
    o_p = o_sz + 8 * n
    o_m = (o_p + len(path_blob) + 7) & ~7
    end = o_m + len(meta_blob)
    return (
        head.pack(manifest_index.MAGIC, n, o_po, o_mo, o_sz, o_p, o_m, end)
        + pathoff.tobytes()
        + metaoff.tobytes()
        + sizes.tobytes()
        + path_blob
        + b"\0" * (o_m - o_p - len(path_blob))
        + meta_blob
    )


def test_hostile_stored_index_is_refused(tmp_path, small_threshold):
    url = str(tmp_path / "registry")
    res = open_registry(url)
    record = commit_files(res.registry, tmp_path, "big", FILES)
    digest = res.registry.manifest(record).entries["d0/f0.txt"].digest.encode()
    res.store.put(_index_key(record), _raw_index([b"../../escape", b"ok"], digest))
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/big:v0"
        assert sorted(os.listdir(d)) == ["d0", "d1", "d2"]  # indexed from the manifest
        stats = _stats(m)
        assert _counter(stats, "indexes_fetched") == 0
        assert _counter(stats, "indexes_built") == 1
        assert "not used" in m.log()
    res.close()
