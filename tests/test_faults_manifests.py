"""Issue 14 item 5: a hostile manifest is refused whole, the same way by the API and the mount.

Before: the mount skipped bad entries with a log line (a version shown empty or partial, no
error), listed a file and a directory named `a` twice, read a negative size as 0 bytes with
rc 0, and a 10^18 size evicted a valid shared cached blob, while the API refused the same
manifests. Now one validator (resolver/manifest_check.py) serves the API, the mount's index
builder and fetched prebuilt indexes: the mount answers EIO on the version, and says why in its
log and in `.artifactfs/errors.json`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import uuid

import pytest
from mountutil import commit_files, mounted, open_registry

import artifactfs as af
from artifactfs.errors import InvalidManifestError, InvalidPathError
from artifactfs.resolver import index_check, keys, manifest_check, manifest_index
from artifactfs.resolver.manifest import Manifest, md5_b64_of_bytes

pytestmark = pytest.mark.fuse

GOOD = md5_b64_of_bytes(b"payload")
ENTRY = {"digest": GOOD, "size": 7}


def _manifest(contents: object) -> bytes:
    return json.dumps(
        {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": contents,
        }
    ).encode()


HOSTILE: dict[str, bytes] = {
    "escaping-path": _manifest({"ok.bin": ENTRY, "../escape.bin": ENTRY}),
    "file-and-dir": _manifest({"a": ENTRY, "a/b.bin": ENTRY}),
    "negative-size": _manifest({"neg.bin": {"digest": GOOD, "size": -5}}),
    "huge-size": _manifest({"huge.bin": {"digest": GOOD, "size": 10**18}}),
    "size-not-int": _manifest({"s.bin": {"digest": GOOD, "size": "7"}}),
    "bad-digest": _manifest({"d.bin": {"digest": "not base64!", "size": 7}}),
    "entry-not-object": _manifest({"x.bin": "just a string"}),
    "twice-normalized": _manifest({"dup.bin": ENTRY, "./dup.bin": ENTRY}),
    "twice-raw": _manifest({"dup.bin": ENTRY}).replace(
        b'"contents": {', b'"contents": {"dup.bin": {"digest": "%s", "size": 7}, ' % GOOD.encode()
    ),
    "not-json": b'{"version": 1, "contents": {',
}


def _plant(store, name: str, raw: bytes, template: dict) -> None:
    """A version of collection `name` whose manifest is `raw`, as a writer with store access
    (an attacker, a buggy tool) could make it."""
    mkey = keys.manifest_key(hashlib.md5(raw).hexdigest())
    store.put(mkey, raw)
    record = dict(template, name=name, version=0, manifest_key=mkey, id=uuid.uuid4().hex)
    store.create(
        keys.collection_key("acme", "proj", name),
        json.dumps({"entity": "acme", "project": "proj", "name": name, "type": "dataset"}).encode(),
    )
    store.create(keys.version_key("acme", "proj", name, 0), json.dumps(record).encode())


def test_api_and_mount_refuse_the_same_hostile_manifests(tmp_path):
    url = str(tmp_path / "registry")
    res = open_registry(url)
    good = commit_files(res.registry, tmp_path, "good", {"payload.bin": b"payload"})
    template = json.loads(good.to_bytes())
    for name, raw in HOSTILE.items():
        _plant(res.store, name, raw, template)
        with pytest.raises((InvalidManifestError, InvalidPathError)) as e:
            Manifest.from_bytes(raw)
        assert "\n" not in str(e.value), "every error is one line"

    api = af.Api(registry=url, overrides={"entity": "acme", "project": "proj"})
    refused_by_api = 0
    for name in HOSTILE:
        with pytest.raises((InvalidManifestError, InvalidPathError)):
            api.artifact(f"{name}:v0").download(str(tmp_path / "dl" / name))
        refused_by_api += 1
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").rglob("*.bin"))

    with mounted(tmp_path / "mnt", registry=url) as m:
        proj = m.path / "acme" / "proj"
        cached_blob = (proj / "good:v0" / "payload.bin").read_bytes()  # in the shared cache
        refused_by_mount = 0
        for name in HOSTILE:
            with pytest.raises(OSError) as e:
                os.listdir(proj / f"{name}:v0")
            assert e.value.errno == errno.EIO, name
            for file in ("ok.bin", "huge.bin", "neg.bin", "a"):
                with pytest.raises(OSError):
                    (proj / f"{name}:v0" / file).read_bytes()
            refused_by_mount += 1
        errors = json.loads((m.path / ".artifactfs" / "errors.json").read_text())
        refused = errors["refused_versions"]
        assert sorted(refused) == sorted(f"acme/proj/{n}:v0" for n in HOSTILE)
        assert "size 1000000000000000000 is outside" in refused["acme/proj/huge-size:v0"]
        assert "both as a file and as a directory" in refused["acme/proj/file-and-dir:v0"]
        assert m.stats()["mount"]["invalid_manifests"] == len(HOSTILE)
        assert "manifest refused" in m.log()
        # the valid version and its cached blob are untouched
        assert (proj / "good:v0" / "payload.bin").read_bytes() == cached_blob == b"payload"
        assert m.stats()["cache"]["bytes_fetched"] == len(b"payload")
    assert refused_by_api == refused_by_mount == len(HOSTILE)  # 10/10 refused by both


def test_index_rows_get_the_manifest_rules(tmp_path):
    """The builder (fast and JSON paths) and a fetched prebuilt index refuse the same things."""
    digest = GOOD.encode()
    fine = {"a/1.bin": ENTRY, "a/2.bin": ENTRY, "b.bin": ENTRY}
    assert manifest_index.build_index_bytes(_manifest(fine), tmp_path / "ok.idx") == 3
    for name, raw in HOSTILE.items():
        with pytest.raises(manifest_check.MANIFEST_ERRORS):
            manifest_index.build_index_bytes(raw, tmp_path / f"{name}.idx")
    cases = {
        "clash": ([b"a", b"a/b"], [digest, digest], [7, 7]),
        "duplicate": ([b"a", b"a"], [digest, digest], [7, 7]),
        "unsorted": ([b"b", b"a"], [digest, digest], [7, 7]),
        "negative": ([b"a"], [digest], [-5]),
        "huge": ([b"a"], [digest], [10**18]),
        "digest": ([b"a"], [b"zzz"], [7]),
        "meta-size": ([b"a"], [json.dumps({"digest": GOOD, "size": 9}).encode()], [7]),
    }
    for name, (paths, metas, sizes) in cases.items():
        with pytest.raises(manifest_check.MANIFEST_ERRORS):
            manifest_check.check_rows(paths, metas, sizes)
        path = tmp_path / f"{name}.idx"
        path.write_bytes(_raw_index(paths, metas, sizes))
        with pytest.raises(manifest_index.IndexError_):
            index_check.check_untrusted(manifest_index.ManifestIndex(path))
    manifest_check.check_rows([b"a/1", b"a/2", b"b"], [digest] * 3, [7, -1, 0])


def _raw_index(paths: list[bytes], metas: list[bytes], sizes: list[int]) -> bytes:
    """An index file in the on-disk format with exactly these rows (unsorted if asked)."""
    import array
    import itertools

    n = len(paths)
    pathoff = array.array("Q", itertools.accumulate(map(len, paths), initial=0))
    metaoff = array.array("Q", itertools.accumulate(map(len, metas), initial=0))
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
        + array.array("q", sizes).tobytes()
        + path_blob
        + b"\0" * (o_m - o_p - len(path_blob))
        + meta_blob
    )
