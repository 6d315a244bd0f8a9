"""Entries of one artifact referenced by another: `ref_url()` is an `artifact://` URL that fsspec
opens and `add_reference` takes; such entries keep their bytes in the registry by digest."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

import artifactfs as af
from artifactfs.fsspec import filesystem as fsspec_fs


@pytest.fixture(autouse=True)
def fresh_fsspec():
    fsspec_fs.reset()
    yield
    fsspec_fs.reset()


def test_ref_url_opens_and_references(registry_url, tmp_path):
    src_dir = tmp_path / "src"
    (src_dir / "sub").mkdir(parents=True)
    (src_dir / "a.txt").write_text("alpha")
    (src_dir / "sub" / "b.txt").write_text("beta")
    (src_dir / "sub" / "c.txt").write_text("gamma")
    outside = tmp_path / "outside.txt"
    outside.write_text("external")
    with af.init(entity="acme", project="proj") as run:
        src = af.Artifact("src", "dataset")
        src.add_dir(str(src_dir))
        src.add_reference(outside.as_uri(), name="ext.txt")
        run.log_artifact(src, aliases=["best"])

        url = src.get_path("sub/b.txt").ref_url()
        assert url == "artifact://acme/proj/src:v0/sub/b.txt"
        with fsspec.open(url) as f:
            assert f.read() == b"beta"

        derived = af.Artifact("derived", "dataset")
        (one,) = derived.add_reference(url)  # as W&B: add_reference(entry.ref_url())
        assert (one.path, one.ref) == ("b.txt", url) and one.birth_artifact_id == src.id
        # a directory of a version, through an alias: pinned to the version it names now
        dir_entries = derived.add_reference("artifact://acme/proj/src:best/sub", name="copy")
        assert sorted((e.path, e.ref) for e in dir_entries) == [
            ("copy/b.txt", "artifact://acme/proj/src:v0/sub/b.txt"),
            ("copy/c.txt", "artifact://acme/proj/src:v0/sub/c.txt"),
        ]
        (ext,) = derived.add_reference(src.get_path("ext.txt"))
        assert ext.ref == outside.as_uri()  # an external reference stays external
        (entry,) = derived.add_reference(src.get_path("a.txt"), name="first.txt")
        assert entry.ref == "artifact://acme/proj/src:v0/a.txt"
        run.log_artifact(derived)

        # a new version of the source moves `best` elsewhere: derived still names v0
        (src_dir / "sub" / "b.txt").write_text("changed")
        src2 = af.Artifact("src", "dataset")
        src2.add_dir(str(src_dir))
        run.log_artifact(src2, aliases=["best"])

    got = af.Api().artifact("acme/proj/derived:v0")
    root = got.download(str(tmp_path / "dl"))
    files = {p.relative_to(root).as_posix(): p.read_text() for p in _files(root)}
    assert files == {
        "b.txt": "beta",
        "copy/b.txt": "beta",
        "copy/c.txt": "gamma",
        "ext.txt": "external",
        "first.txt": "alpha",
    }
    got.verify(root)  # artifact:// entries are content: checked (external ones are not)
    (tmp_path / "dl" / "copy" / "c.txt").write_text("tampered")
    with pytest.raises(ValueError, match=r"copy/c\.txt"):
        got.verify(root)

    fs = fsspec.filesystem("artifact")
    assert fs.cat("acme/proj/derived:v0/copy/b.txt") == b"beta"
    assert (
        fs.info("acme/proj/derived:v0/copy/b.txt")["ref"] == "artifact://acme/proj/src:v0/sub/b.txt"
    )
    assert fs.ukey("acme/proj/derived:v0/copy/b.txt") == fs.ukey("acme/proj/src:v0/sub/b.txt")

    with af.init(entity="acme", project="proj") as run:
        bad = af.Artifact("bad", "dataset")
        with pytest.raises(FileNotFoundError, match="nothing"):
            bad.add_reference("artifact://acme/proj/src:v0/missing")
        with pytest.raises(LookupError, match="no version v9"):
            bad.add_reference("artifact://acme/proj/src:v9/a.txt")


def _files(root):
    return [p for p in Path(root).rglob("*") if p.is_file()]
