"""The local (unlogged) side of Artifact: adding, naming rules, guards. No registry needed."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

import artifactfs as af
from artifactfs.cache import references
from artifactfs.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    InvalidMetadataError,
    InvalidNameError,
    InvalidPathError,
)


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("alpha")
    (d / "sub" / "b.bin").write_bytes(b"\x00\x01beta")
    return d


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_add_file_names_and_is_tmp(files):
    art = af.Artifact("ds", type="dataset")
    e = art.add_file(files / "a.txt")
    assert e.path == "a.txt" and e.size == 5 and e.digest == _b64md5(b"alpha")
    assert art.add_file(str(files / "a.txt"), name="new/path/f.txt").path == "new/path/f.txt"
    hex20 = hashlib.md5(b"alpha").hexdigest()[:20]
    # W&B: the part of the file name before the first dot becomes the md5's first 20 hex chars
    assert art.add_file(files / "a.txt", name="t/x.tar.gz", is_tmp=True).path == f"t/{hex20}.tar.gz"
    assert art.add_file(files / "a.txt", is_tmp=True).path == f"{hex20}.txt"
    assert art.get_added_local_path_name(str(files / "a.txt")) in art.manifest
    assert art.get_added_local_path_name(files / "nope.txt") is None
    with pytest.raises(ValueError):
        art.add_file(files / "missing.txt")


def test_add_dir_root_and_named(files):
    art = af.Artifact("ds", type="dataset")
    art.add_dir(files)
    assert sorted(art.manifest.entries) == ["a.txt", "sub/b.bin"]
    art2 = af.Artifact("ds", type="dataset")
    art2.add_dir(str(files), name="destination")
    assert sorted(art2.manifest.entries) == ["destination/a.txt", "destination/sub/b.bin"]
    assert art.size == 5 + 6
    with pytest.raises(ValueError):
        art.add_dir(files / "a.txt")


def test_digest_and_manifest_follow_wandb_v1(files):
    art = af.Artifact("ds", type="dataset")
    art.add_dir(files)
    lines = b"wandb-artifact-manifest-v1\n"
    for path, data in sorted([("a.txt", b"alpha"), ("sub/b.bin", b"\x00\x01beta")]):
        lines += f"{path}:{_b64md5(data)}\n".encode()
    assert art.digest == hashlib.md5(lines).hexdigest()
    doc = json.loads(art.manifest.to_bytes())
    assert doc["version"] == 1 and doc["storagePolicy"] == "wandb-storage-policy-v1"
    assert doc["contents"]["a.txt"] == {"digest": _b64md5(b"alpha"), "size": 5}
    assert art.state == "PENDING" and art.name == "ds" and art.id is None


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a\x00b", "a/../../b", "", "."])
def test_bad_paths_are_refused_and_change_nothing(files, bad):
    art = af.Artifact("ds", type="dataset")
    with pytest.raises(InvalidPathError):
        art.add_file(files / "a.txt", name=bad)
    with pytest.raises(InvalidPathError), art.new_file(bad) as f:
        f.write("x")
    if bad:  # add_dir(name="") means the root, which is fine
        with pytest.raises(InvalidPathError):
            art.add_dir(files, name=bad)
    assert len(art.manifest) == 0


@pytest.mark.parametrize(
    ("name", "type_"), [("bad name", "dataset"), ("ok", "ty/pe"), ("a:b", "dataset"), ("", "x")]
)
def test_invalid_names_and_types(name, type_):
    with pytest.raises(InvalidNameError):
        af.Artifact(name, type=type_)


def test_metadata_limit():
    with pytest.raises(InvalidMetadataError):
        af.Artifact("ds", "dataset", metadata={f"k{i}": i for i in range(101)})
    art = af.Artifact("ds", "dataset", metadata={f"k{i}": i for i in range(100)})
    with pytest.raises(ValueError):
        art.metadata = {"x": object()}
    assert len(art.metadata) == 100


def test_remove_path_directory_and_entry(files):
    art = af.Artifact("ds", type="dataset")
    art.add_dir(files)
    art.add_file(files / "a.txt", name="sub/c.txt")
    with pytest.raises(FileNotFoundError):
        art.remove("su")  # a name prefix is not a directory prefix
    art.remove("sub")
    assert sorted(art.manifest.entries) == ["a.txt"]
    art.remove(art.manifest.get("a.txt"))
    assert len(art.manifest) == 0
    with pytest.raises(FileNotFoundError):
        art.remove("a.txt")


def test_new_file_and_table(tmp_path):
    art = af.Artifact("ds", type="dataset")
    with art.new_file("hello.txt") as f:
        f.write("hello!")
    assert art.manifest.get("hello.txt").digest == _b64md5(b"hello!")
    with pytest.raises(ValueError), art.new_file("hello.txt") as f:
        f.write("again")
    entry = art.add(af.Table(columns=["a", "b"], data=[[1, 2]]), "my_table")
    assert entry.path == "my_table.table.json"
    art["t2"] = af.Table(columns=["x"], data=[["y"]])
    assert "t2.table.json" in art.manifest
    with pytest.raises(ValueError):
        art.add("not a table", "x")  # type: ignore[arg-type]


def test_finalized_refuses_every_mutation(files):
    art = af.Artifact("ds", type="dataset")
    art.add_file(files / "a.txt")
    art.finalize()
    calls = [
        lambda: art.add_file(files / "a.txt", name="b"),
        lambda: art.add_dir(files),
        lambda: art.add_reference("file:///x"),
        lambda: art.add(af.Table(columns=["a"], data=[]), "t"),
        lambda: art.__setitem__("t", af.Table(columns=["a"], data=[])),
        lambda: art.remove("a.txt"),
        lambda: art.new_file("n.txt").__enter__(),
    ]
    for call in calls:
        with pytest.raises(ArtifactFinalizedError):
            call()
    assert list(art.manifest.entries) == ["a.txt"]


def test_unlogged_artifact_refuses_registry_operations(tmp_path):
    art = af.Artifact("ds", type="dataset")
    calls = [
        lambda: art.get("t"),
        lambda: art["t"],
        lambda: art.get_path("a.txt"),
        lambda: art.download(tmp_path),
        lambda: art.checkout(tmp_path),
        lambda: art.verify(tmp_path),
        art.wait,
        art.json_encode,
        art.logged_by,
        art.used_by,
        art.delete,
        lambda: art.version,
        lambda: art.commit_hash,
        lambda: art.get_entry("a.txt"),
        art.files,
        art.file,
        art.new_draft,
        art.unlink,
        lambda: art.entity,
        lambda: art.qualified_name,
        lambda: art.tags,
        lambda: art.updated_at,
        lambda: art.collection,
        lambda: art.linked_artifacts,
    ]
    for call in calls:
        with pytest.raises(ArtifactNotLoggedError):
            call()
    # W&B's status errors are AttributeErrors: hasattr() answers instead of raising
    assert not hasattr(art, "version") and art.is_draft() and not art.is_link


def test_add_reference_naming(monkeypatch):
    def fake(uri, checksum=True, max_objects=None, config=None):
        if uri.endswith("/prefix"):
            return [
                references.ReferenceObject(uri + "/x/1.bin", "x/1.bin", "etag1", 1),
                references.ReferenceObject(uri + "/2.bin", "2.bin", "etag2", 2),
            ][: max_objects or None]
        return [references.ReferenceObject(uri, "", "etag0", 7, {"versionID": "v9"})]

    monkeypatch.setattr(references, "resolve_reference", fake)
    art = af.Artifact("refs", type="dataset")
    (single,) = art.add_reference("s3://bucket/dir/file.txt")
    assert (single.path, single.ref, single.extra) == (
        "file.txt",
        "s3://bucket/dir/file.txt",
        {"versionID": "v9"},
    )
    assert art.add_reference("https://h/f.bin", name="named.bin")[0].path == "named.bin"
    assert [e.path for e in art.add_reference("s3://b/prefix")] == ["x/1.bin", "2.bin"]
    got = art.add_reference("s3://b/prefix", name="under", max_objects=1)
    assert [e.path for e in got] == ["under/x/1.bin"]
    with pytest.raises(InvalidPathError):
        art.add_reference("s3://b/prefix", name="../up")
    assert "../up/2.bin" not in art.manifest


def test_script_exit_is_silent_and_cleans_staging(tmp_path):
    """An artifact still alive at interpreter exit (a module global) removes its staging
    directory without `Exception ignored in: ... __del__` on stderr."""
    import os
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(
        "import artifactfs as af\n"
        "art = af.Artifact('notes', type='dataset')\n"
        "with art.new_file('a.txt') as f:\n"
        "    f.write('hello')\n"
        "print(art._tmpdir)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    staged = done.stdout.strip()
    assert staged and not os.path.exists(staged)


def test_late_collection_needs_no_module_globals(tmp_path, monkeypatch):
    """At interpreter exit, an artifact collected after its module's globals were cleared
    (a reference cycle, a global of another module) still cleans up without an error: the
    cleanup holds what it needs instead of reading module globals (`contextlib`, `shutil`)."""
    import gc
    import os
    import sys

    from artifactfs.sdk import artifact_content

    raised: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", raised.append)
    art = af.Artifact("notes", type="dataset")
    with art.new_file("a.txt") as f:
        f.write("hello")
    staged = art._tmpdir
    assert staged and os.path.isdir(staged)
    monkeypatch.setattr(artifact_content, "contextlib", None)
    monkeypatch.setattr(artifact_content, "shutil", None)
    del art
    gc.collect()
    assert raised == []
    assert not os.path.exists(staged)
