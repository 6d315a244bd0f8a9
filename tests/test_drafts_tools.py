"""Drafts as a local directory on a real mount (issue 13): git, cp -a, rsync -aHX, owners, links,
xattrs and exec bits while the draft lives; what a version keeps after commit and remount."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from mountutil import commit_files, mounted, open_registry
from test_drafts_support import tree, version_files

from artifactfs.resolver.names import parse_artifact_name

pytestmark = [
    pytest.mark.usefixtures("write_cache_mode"),
    pytest.mark.fuse,
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse"),
]
ROOT = os.geteuid() == 0
CLI = [sys.executable, "-m", "artifactfs"]


def run(*cmd: str, cwd: Path | None = None) -> str:
    out = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert out.returncode == 0, f"{cmd}: {out.stdout}{out.stderr}"
    return out.stdout


def latest(resolver, name):
    resolver.registry.invalidate()
    return resolver.registry.resolve(parse_artifact_name(f"acme/proj/{name}:latest"))


def make_tree(src: Path) -> None:
    """A Hugging Face-like snapshot: blobs, relative symlinks to them, a hard link, a script,
    a link to a directory, a dangling link and one leaving the tree."""
    (src / "blobs").mkdir(parents=True)
    (src / "blobs/aaa").write_bytes(b"weights " * 1000)
    (src / "blobs/bbb").write_text('{"model": "tiny"}\n')
    (src / "snapshots/main").mkdir(parents=True)
    os.symlink("../../blobs/aaa", src / "snapshots/main/model.bin")
    os.symlink("../../blobs/bbb", src / "snapshots/main/config.json")
    os.symlink("snapshots/main", src / "current")
    os.link(src / "blobs/aaa", src / "blobs/aaa-hardlink")
    (src / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (src / "run.sh").chmod(0o755)
    os.symlink("missing", src / "dangling")
    os.symlink("/etc/hostname", src / "outside")
    os.setxattr(src / "blobs/bbb", "user.origin", b"hub")


@pytest.fixture
def reg(tmp_path, monkeypatch):
    url = str(tmp_path / "registry")
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    resolver = open_registry(url)
    yield url, resolver
    resolver.close()


def test_rsync_and_cp_a_keep_links_modes_owners_xattrs_and_a_version_keeps_what_it_can(
    reg, tmp_path
):
    url, resolver = reg
    src = tmp_path / "src"
    make_tree(src)
    if ROOT:
        os.lchown(src / "blobs/bbb", 1234, 4321)
    mnt = tmp_path / "mnt"
    write_dir = Path(os.environ["XDG_DATA_HOME"]) / "artifactfs/drafts"
    with mounted(mnt, registry=url) as m:
        proj = m.path / "acme/proj"
        proj.mkdir(parents=True)
        run("rsync", "-aHX", f"{src}/", str(proj / "snap"))
        run("cp", "-a", str(src), str(proj / "copy"))
        for d in (proj / "snap", proj / "copy"):
            assert os.readlink(d / "snapshots/main/model.bin") == "../../blobs/aaa"
            assert (d / "current/config.json").read_text() == '{"model": "tiny"}\n'
            # one staged inode on disk (the mount shows each name its own inode number:
            # libfuse's high-level API numbers paths, docs/SEMANTICS.md)
            staged = write_dir / "acme/proj" / d.name / "files/blobs"
            assert os.path.samestat(os.stat(staged / "aaa"), os.stat(staged / "aaa-hardlink"))
            assert os.stat(d / "blobs/aaa").st_nlink == 2
            assert stat.S_IMODE(os.stat(d / "run.sh").st_mode) == 0o755
            assert os.getxattr(d / "blobs/bbb", "user.origin") == b"hub"
            if ROOT:
                st = os.lstat(d / "blobs/bbb")
                assert (st.st_uid, st.st_gid) == (1234, 4321)
            assert run(str(d / "run.sh")) == "ran\n"
        mtime = os.lstat(src / "blobs/bbb").st_mtime_ns
        assert os.lstat(proj / "snap/blobs/bbb").st_mtime_ns == mtime  # nanoseconds kept
        out = run(*CLI, "commit", "acme/proj/snap", "--dry-run")
        assert "dangling -> missing: dangling" in out and "outside the draft" in out
    # unmount committed both; remount and look at what the versions kept
    with mounted(mnt, registry=url) as m:
        v = m.path / "acme/proj/snap:latest"
        regular = {
            str(p.relative_to(src)): p.read_bytes()
            for p in src.rglob("*")
            if p.is_file() and not p.is_symlink()
        }
        assert tree(v) == regular | {
            "snapshots/main/model.bin": b"weights " * 1000,
            "snapshots/main/config.json": b'{"model": "tiny"}\n',
            "current/model.bin": b"weights " * 1000,
            "current/config.json": b'{"model": "tiny"}\n',
        }
        assert not os.path.islink(v / "current")  # symlinks became what they point to
        assert stat.S_IMODE(os.stat(v / "run.sh").st_mode) == 0o555
        assert stat.S_IMODE(os.stat(v / "blobs/bbb").st_mode) == 0o444
        assert run(str(v / "run.sh")) == "ran\n"
        assert not os.path.exists(v / "dangling") and not os.path.exists(v / "outside")
        # the draft of the name shows the version, exec bit included
        assert stat.S_IMODE(os.stat(m.path / "acme/proj/snap/run.sh").st_mode) == 0o755
    manifest = resolver.registry.manifest(latest(resolver, "snap"))
    digests = {p: e.digest for p, e in manifest.entries.items()}
    assert digests["blobs/aaa"] == digests["blobs/aaa-hardlink"] == digests["current/model.bin"]
    assert manifest.entries["run.sh"].extra == {"executable": True}
    assert version_files(resolver, latest(resolver, "copy")).keys() == manifest.entries.keys()


def test_git_clone_local_commit_and_status_clean_after_remount(reg, tmp_path):
    url, _resolver = reg
    origin = tmp_path / "origin"
    origin.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    run(*git, "init", "-q", str(origin))
    (origin / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (origin / "run.sh").chmod(0o755)
    (origin / "README").write_text("readme\n")
    run(*git, "-C", str(origin), "add", ".")
    run(*git, "-C", str(origin), "commit", "-q", "-m", "one")
    mnt = tmp_path / "mnt"
    with mounted(mnt, registry=url) as m:
        proj = m.path / "acme/proj"
        proj.mkdir(parents=True)
        run(*git, "clone", "-q", str(origin), str(proj / "code"))
        code = proj / "code"
        # a local clone of a repository in the draft hard-links its objects
        run(*git, "clone", "-q", "--local", str(code), str(proj / "code/nested"))
        assert run(*git, "-C", str(code / "nested"), "status", "--porcelain") == ""
        shutil.rmtree(code / "nested")
        (code / "new.txt").write_text("new\n")
        run(*git, "-C", str(code), "add", "new.txt")
        run(*git, "-C", str(code), "commit", "-q", "-m", "two")
        run(*git, "-C", str(code), "gc", "-q")
        assert run(*git, "-C", str(code), "status", "--porcelain") == ""
    with mounted(mnt, registry=url) as m:
        code = m.path / "acme/proj/code"
        assert run(*git, "-C", str(code), "status", "--porcelain") == ""
        assert run(*git, "-C", str(code), "fsck", "--no-progress").strip() == ""
        assert run(str(code / "run.sh")) == "hi\n"
        ver = m.path / "acme/proj/code:latest"
        assert run(*git, "-C", str(ver), "log", "--format=%s") == "two\none\n"


def test_copying_a_version_never_carries_its_commit_options(reg, tmp_path):
    """cp -a and rsync -aX copy the informational user.artifact.* of a version; on a draft they
    are inert: the copy's version gets none of the source's aliases, type or description."""
    url, resolver = reg
    commit_files(
        resolver.registry,
        tmp_path,
        "prod-model",
        {"w.bin": b"w" * 100},
        type_="model",
        aliases=("prod",),
        description="the one in production",
    )
    with mounted(tmp_path / "mnt", registry=url) as m:
        proj = m.path / "acme/proj"
        version = proj / "prod-model:prod"
        assert "prod" in json.loads(os.getxattr(version, "user.artifact.aliases"))
        run("cp", "-a", f"{version}/.", str(proj / "copy-a"))
        run("cp", "-a", str(proj / "prod-model:v0"), str(proj / "copy-dir"))
        run("rsync", "-aX", f"{version}/", str(proj / "copy-rsync"))
        d = proj / "copy-dir"
        os.setxattr(d, "user.artifact.type", b"model")  # inert on a draft: informational
        assert "user.artifact.type" not in os.listxattr(d)
        os.setxattr(d, "user.artifact.commit.description", b"a copy")
        assert os.getxattr(d, "user.artifact.commit.description") == b"a copy"
        with pytest.raises(OSError) as e:
            os.setxattr(d / "w.bin", "trusted.x", b"1")
        assert e.value.errno in (errno.EOPNOTSUPP, errno.EPERM)
    for name in ("copy-a", "copy-dir", "copy-rsync"):
        rec = latest(resolver, name)
        assert rec.type == "dataset" and rec.description in (None, "a copy")
        assert set(resolver.registry.aliases("acme", "proj", name)) == {"latest"}
    assert latest(resolver, "copy-dir").description == "a copy"
    assert latest(resolver, "prod-model").version == 0  # the source kept its alias
    rec = latest(resolver, "prod-model")
    assert (
        json.loads(json.dumps(resolver.registry.aliases("acme", "proj", "prod-model")))["prod"]
        == rec.version
    )
