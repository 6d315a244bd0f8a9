"""Issue 20 item 5: hostile manifests and records get a named error and one clear line.

Before: a path "\\ud800" made `get` print a UnicodeEncodeError traceback (the mount answered
ENOENT and left it out of `errors.json`); a 3,000-deep JSON manifest gave a RecursionError
traceback; a version record whose `manifest_key` is `/etc/passwd` made readers parse the local
`/etc/passwd`; one invalid collection key (`.hidden`) made `artifactfs ls acme/proj` and
`Api().artifact_collections` fail for the whole project. Now every reader (CLI, API, fsspec,
mount) refuses each with an ArtifactFSError, the CLI prints one line, the mount lists the case
in `.artifactfs/errors.json`, and the rest of the project keeps listing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mountutil import commit_files, mounted, open_registry

import artifactfs as af
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver import keys
from artifactfs.resolver.manifest import md5_b64_of_bytes

GOOD = md5_b64_of_bytes(b"payload")
CLI = [sys.executable, "-m", "artifactfs"]


def _manifest(contents: object) -> bytes:
    return json.dumps(
        {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": contents,
        }
    ).encode()


DEEP = b'{"version": 1, "contents": {"a": ' + b"[" * 3000 + b"]" * 3000 + b"}}"
MANIFESTS = {
    "surrogate": _manifest({"\ud800": {"digest": GOOD, "size": 7}}),
    "deep": DEEP,
    "huge": _manifest({"h.bin": {"digest": GOOD, "size": 10**15}}),
}
RECORDS = {"passwd": {"manifest_key": "/etc/passwd"}, "dotdot": {"manifest_key": "../x.json"}}


def _plant(
    store, template: dict, collection: str, /, *, raw: bytes | None = None, **fields
) -> None:
    """A version of collection `name`, written as someone with store access could."""
    name = collection
    record = dict(template, name=name, version=0, id=uuid.uuid4().hex)
    if raw is not None:
        record["manifest_key"] = keys.manifest_key(hashlib.md5(raw).hexdigest())
        store.put(record["manifest_key"], raw)
    record.update(fields)
    coll = {"entity": "acme", "project": "proj", "name": name, "type": "dataset"}
    store.create(keys.collection_key("acme", "proj", name), json.dumps(coll).encode())
    store.create(keys.version_key("acme", "proj", name, 0), json.dumps(record).encode())


@pytest.fixture
def hostile(registry_url, tmp_path):
    res = open_registry(registry_url)
    good = commit_files(res.registry, tmp_path, "good", {"payload.bin": b"payload"})
    template = json.loads(good.to_bytes())
    for name, raw in MANIFESTS.items():
        _plant(res.store, template, name, raw=raw)
    for name, fields in RECORDS.items():
        _plant(res.store, template, name, **fields)
    hidden = {"entity": "acme", "project": "proj", "name": ".hidden", "type": "dataset"}
    res.store.create("registry/acme/proj/.hidden/collection.json", json.dumps(hidden).encode())
    return registry_url


CASES = [*MANIFESTS, *RECORDS]


def test_cli_api_and_fsspec_give_named_errors_and_keep_listing(hostile, tmp_path):
    env = dict(os.environ, ARTIFACTFS_REGISTRY=hostile)
    for name in CASES:
        for args in (["get", f"acme/proj/{name}:v0", "--root", str(tmp_path / name)],
                     ["ls", f"acme/proj/{name}:v0"]):  # fmt: skip
            p = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True)
            if name == "huge" and args[0] == "ls":  # a valid manifest: only its bytes are wrong
                assert p.returncode == 0 and "909.5 TiB" in p.stdout, p.stderr
                continue
            assert p.returncode == 1, (args, p.stdout, p.stderr)
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("artifactfs: error: "), p.stderr
    assert not os.path.exists("/etc/passwd.json")
    p = subprocess.run([*CLI, "ls", "acme/proj"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "good" in p.stdout and "surrogate" in p.stdout and ".hidden" not in p.stdout

    api = af.Api(registry=hostile, overrides={"entity": "acme", "project": "proj"})
    names = [c.name for c in api.artifact_collections("acme/proj", "dataset")]
    assert "good" in names and ".hidden" not in names
    for name in CASES:
        with pytest.raises(ArtifactFSError):
            api.artifact(f"{name}:v0").download(str(tmp_path / "dl" / name))
    fs = fsspec.filesystem("artifact", registry=hostile)
    assert fs.cat_file("acme/proj/good:v0/payload.bin") == b"payload"
    for name in CASES:
        with pytest.raises(ArtifactFSError):
            files = fs.ls(f"acme/proj/{name}:v0", detail=False)
            fs.cat_file(files[0])


@pytest.mark.fuse
def test_mount_refuses_them_and_lists_them_in_errors_json(hostile, tmp_path):
    with mounted(tmp_path / "mnt", registry=hostile) as m:
        proj = m.path / "acme" / "proj"
        listing = os.listdir(proj)
        assert "good:v0" in listing and not any(n.startswith(".hidden") for n in listing)
        assert (proj / "good:v0" / "payload.bin").read_bytes() == b"payload"
        for name in CASES:
            with pytest.raises(OSError) as e:
                for f in os.listdir(proj / f"{name}:v0"):
                    with open(proj / f"{name}:v0" / f, "rb") as fh:
                        fh.read(10)
            assert e.value.errno == errno.EIO, name
        report = json.loads((m.path / ".artifactfs" / "errors.json").read_text())
        assert sorted(report["refused_versions"]) == ["acme/proj/deep:v0", "acme/proj/surrogate:v0"]
        assert "not valid Unicode" in report["refused_versions"]["acme/proj/surrogate:v0"]
        assert {"acme/proj/passwd:v0", "acme/proj/dotdot:v0"} <= set(report["refused_records"])
        assert "Traceback" not in m.log()


# -- fuzzing: whatever a store holds, readers raise only named errors ----------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_paths = st.text(max_size=12) | st.sampled_from(["a", "a/b", "../x", "/abs", "a//b", "\ud800", "."])
_entries = st.fixed_dictionaries(
    {},
    optional={
        "digest": st.just(GOOD) | st.text(max_size=30),
        "size": st.integers(min_value=-2, max_value=2**64) | _json,
        "ref": st.text(max_size=20) | _json,
        "extra": _json,
    },
)
_manifests = st.fixed_dictionaries(
    {"contents": st.dictionaries(_paths, _entries | _json, max_size=4) | _json},
    optional={"version": st.just(1) | _json, "storagePolicy": _json},
)
_record_fields = st.fixed_dictionaries(
    {},
    optional={
        "manifest_key": st.sampled_from(["/etc/passwd", "../m.json", "manifests/x", ""]) | _json,
        "version": st.integers(min_value=-3, max_value=3) | _json,
        "size": _json,
        "file_count": _json,
        "name": st.text(max_size=6) | _json,
        "metadata": _json,
        "state": _json,
        "digest": _json,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(manifest=_manifests, fields=_record_fields, raw_record=st.booleans())
def test_fuzzed_manifests_and_records_raise_only_named_errors(
    tmp_path, manifest, fields, raw_record
):
    url = str(tmp_path / f"reg-{uuid.uuid4().hex[:8]}")
    res = open_registry(url)
    template = json.loads(
        commit_files(res.registry, tmp_path, "good", {"p.bin": b"payload"}).to_bytes()
    )
    raw = json.dumps(manifest).encode()
    if raw_record:  # the record itself is not JSON of a record
        res.store.put(keys.manifest_key(hashlib.md5(raw).hexdigest()), raw)
        coll = {"entity": "acme", "project": "proj", "name": "fz", "type": "dataset"}
        res.store.create(keys.collection_key("acme", "proj", "fz"), json.dumps(coll).encode())
        res.store.create(keys.version_key("acme", "proj", "fz", 0), raw)
    else:
        _plant(res.store, template, "fz", raw=raw, **fields)
    api = af.Api(registry=url, overrides={"entity": "acme", "project": "proj"})
    try:
        art = api.artifact("fz:v0")
        for entry in art.manifest.entries.values():
            _ = entry.path, entry.size, entry.digest
        art.download(str(tmp_path / "dl" / uuid.uuid4().hex))
    except ArtifactFSError:
        pass
    names = [c.name for c in api.artifact_collections("acme/proj", "dataset")]
    assert "good" in names
    assert Path(url).is_dir()
