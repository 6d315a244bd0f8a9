"""Routing and the manifest index, without a mount (fast)."""

from __future__ import annotations

import json

import pytest

from artifactfs.errors import InvalidPathError
from artifactfs.fusefs import tree
from artifactfs.fusefs.draft_tree import DraftTree, ReadOnlyDrafts, is_draft_path
from artifactfs.resolver.manifest import md5_b64_of_bytes
from artifactfs.resolver.manifest_index import ManifestIndex, build_index_bytes


def test_route_kinds():
    assert tree.route("/") == tree.Root()
    assert tree.route("/.artifactfs/stats.json") == tree.Control("stats.json")
    assert tree.route("/acme") == tree.Entity("acme")
    assert tree.route("/acme/p") == tree.Project("acme", "p")
    assert tree.route("/acme/p/m:v3") == tree.Version("acme", "p", "m", 3, "")
    assert tree.route("/acme/p/m:v3/a/b") == tree.Version("acme", "p", "m", 3, "a/b")
    assert tree.route("/acme/p/m:latest") == tree.Alias("acme", "p", "m", "latest")
    assert tree.route("/acme/p/m") == tree.Draft("/acme/p/m")
    assert tree.route("/acme/p/m/x/y") == tree.Draft("/acme/p/m/x/y")
    assert isinstance(tree.route("/acme/p/m:latest/x"), tree.Invalid)
    assert is_draft_path("/acme/p/m/x") and not is_draft_path("/acme/p/m:v1/x")


def test_null_drafts_satisfy_protocol_and_refuse_writes():
    d = ReadOnlyDrafts()
    assert isinstance(d, DraftTree)
    assert d.draft_names("e", "p") == [] and d.extra_entities() == []
    with pytest.raises(OSError) as e:
        d.create("/e/p/m/x", 0o644, 0)
    assert e.value.errno == 30  # EROFS


def _manifest(contents: dict) -> bytes:
    return json.dumps(
        {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": contents,
        },
        separators=(",", ":"),
    ).encode()


@pytest.mark.parametrize("fancy", [False, True])
def test_index_lookup_and_listing(tmp_path, fancy):
    md5 = {c: md5_b64_of_bytes(c.encode()) for c in "ABCDE"}  # stored entries: base64 MD5s
    contents = {
        "a.txt": {"digest": md5["A"], "size": 1},
        "a/b/c.bin": {"digest": md5["B"], "size": 22},
        "a/b.txt": {"digest": md5["C"], "size": 3},
        "a.d/x": {"digest": md5["D"], "size": 4},
        "z": {"digest": md5["E"]},
    }
    if fancy:  # references and extras take the json path
        contents["r/ref.csv"] = {"digest": "etag", "ref": "s3://b/k", "extra": {"versionID": "1"}}
    out = tmp_path / "i.idx"
    n = build_index_bytes(_manifest(contents), out)
    ix = ManifestIndex(out)
    assert n == len(ix) == len(contents)
    assert {c.name: c.is_dir for c in ix.children("")} == {
        "a": True,
        "a.txt": False,
        "a.d": True,
        "z": False,
        **({"r": True} if fancy else {}),
    }
    assert {c.name for c in ix.children("a")} == {"b", "b.txt"}
    assert [c.name for c in ix.children("a/b")] == ["c.bin"]
    assert ix.find("a/b/c.bin") >= 0 and ix.find("a/b") == -1 and ix.is_dir("a/b")
    assert not ix.is_dir("a.txt") and not ix.is_dir("nope")
    e = ix.entry(ix.find("a/b/c.bin"))
    assert (e.path, e.digest, e.size) == ("a/b/c.bin", md5["B"], 22)
    assert ix.size(ix.find("z")) is None
    if fancy:
        r = ix.entry(ix.find("r/ref.csv"))
        assert r.ref == "s3://b/k" and r.extra == {"versionID": "1"}


def test_index_refuses_escaping_paths(tmp_path):
    """The whole manifest is refused, not shown without its bad entry (issue 14 item 5)."""
    out = tmp_path / "i.idx"
    ok = {"digest": md5_b64_of_bytes(b"y")}
    with pytest.raises(InvalidPathError):
        build_index_bytes(_manifest({"../evil": ok, "ok": ok}), out)
    assert not out.exists()
