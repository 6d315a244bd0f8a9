"""The drafts engine as a local directory (issue 13) and drafts tied to their registry (issue 14.3),
without FUSE: links, symlinks at commit, exec bits, placeholders (metadata without a download),
modes and owners, paths up to PATH_MAX, special files refused."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys

import pytest
from test_drafts_support import seed, version_files

from artifactfs.drafts.commit import commit_draft
from artifactfs.drafts.contents import EXEC_KEY
from artifactfs.drafts.draft import open_draft
from artifactfs.drafts.layout import JOURNAL, draft_dir
from artifactfs.resolver.download import checkout_manifest, download_manifest
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

BASE = {"a.txt": b"hello", "sub/b.txt": b"bee", "run.sh": b"#!/bin/sh\necho hi\n"}
W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture
def resolver(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(tmp_path / "registry"))
    r = Resolver.open(ttl=0)
    yield r
    r.close()


def draft_of(resolver, name="mnist"):
    return open_draft(resolver, resolver.config.write_dir, "acme", "mnist", name)


def write(draft, path, data, mode=0o644):
    fd = draft.open_file(path, W, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
        draft.writer_closed()


class CountingFetches:
    """Counts whole-entry fetches of a resolver (a copy-up downloads; metadata must not)."""

    def __init__(self, resolver):
        self.n = 0
        inner = resolver.fetch

        def fetch(entry, *a, **kw):
            self.n += 1
            return inner(entry, *a, **kw)

        resolver.fetch = fetch


def test_symlinks_commit_as_what_they_resolve_to_inside_the_draft(resolver):
    seed(resolver, BASE)
    d = draft_of(resolver)
    d.symlink("to-file", "sub/b.txt")
    d.symlink("sub/up", "../a.txt")
    d.symlink("to-dir", "sub")
    d.symlink("dangling", "nope")
    d.symlink("outside", "/etc/passwd")
    d.symlink("escape", "../../etc/passwd")
    d.symlink("sub/loop", "..")
    assert d.readlink("to-dir") == "sub"
    assert d.lookup("to-file").is_symlink  # kept as a symlink while the draft lives
    contents = d.contents()
    files = {p: e.digest for p, e in contents.manifest.entries.items()}
    digests = {p: e.digest for p, e in d.base_manifest().entries.items()}
    assert files["to-file"] == digests["sub/b.txt"]
    assert files["sub/up"] == digests["a.txt"]
    # a link to a directory holds its files, links inside it resolved the same way
    assert files["to-dir/b.txt"] == digests["sub/b.txt"]
    assert files["to-dir/up"] == digests["a.txt"]
    skipped = {(s.path, s.reason) for s in contents.skipped}
    assert ("dangling", "dangling") in skipped
    assert ("outside", "outside the draft") in skipped
    assert ("escape", "outside the draft") in skipped
    assert ("sub/loop", "loop") in skipped and ("to-dir/loop", "loop") in skipped
    assert not any(p.startswith(("dangling", "outside", "escape", "sub/loop")) for p in files)
    result = commit_draft(d)
    assert result.status == "committed"
    assert any("dangling -> nope" in line for line in result.skipped)
    assert "entries not committed:" in result.describe()
    got = version_files(resolver, resolver.registry.resolve(parse_artifact_name(result.version)))
    assert got["to-dir/b.txt"] == b"bee" and got["to-file"] == b"bee"


def test_hard_links_share_one_staged_inode_and_one_digest(resolver):
    seed(resolver, BASE)
    d = draft_of(resolver)
    fetches = CountingFetches(resolver)
    d.link("a.txt", "a-link.txt")  # a stored file: a placeholder, nothing fetched
    assert fetches.n == 0
    st1, st2 = d.lookup("a.txt").staged, d.lookup("a-link.txt").staged
    assert os.path.samestat(st1, st2) and st1.st_nlink == 2
    write(d, "new.bin", b"x" * 5000)
    d.link("new.bin", "sub/new-link.bin")
    fd = d.open_file("a-link.txt", os.O_WRONLY | os.O_APPEND)  # first data change: filled in place
    os.write(fd, b" world")
    os.close(fd)
    d.writer_closed()
    assert fetches.n == 1
    assert d.lookup("a.txt").staged.st_nlink == 2
    assert (d.files / "a.txt").read_bytes() == b"hello world"  # the other name sees it
    m = d.build_manifest()
    assert m.entries["a.txt"].digest == m.entries["a-link.txt"].digest
    assert m.entries["new.bin"].digest == m.entries["sub/new-link.bin"].digest
    with pytest.raises(OSError) as e:
        d.link("sub", "sub2")
    assert e.value.errno == errno.EPERM
    d.rename("a.txt", "a-link.txt")  # two names of one inode: rename(2) does nothing
    assert d.lookup("a.txt") is not None and d.lookup("a-link.txt") is not None


def test_exec_bit_is_kept_in_extra_without_changing_the_digest(resolver, tmp_path):
    seed(resolver, BASE)
    d = draft_of(resolver)
    fetches = CountingFetches(resolver)
    d.chmod("run.sh", 0o755)  # a stored file: a placeholder, nothing fetched
    assert fetches.n == 0
    node = d.lookup("run.sh")
    assert node.staged is not None and node.reads_stored
    assert d.has_changes()
    result = commit_draft(d)
    assert result.status == "committed", result.describe()
    record = resolver.registry.resolve(parse_artifact_name(result.version))
    base = resolver.registry.resolve(parse_artifact_name("acme/mnist/mnist:v0"))
    assert record.digest == base.digest  # W&B's digest has no modes
    manifest = resolver.registry.manifest(record)
    assert manifest.entries["run.sh"].extra == {EXEC_KEY: True}
    assert EXEC_KEY not in manifest.entries["a.txt"].extra
    # download() and checkout() restore it, also on a file that already has the bytes
    out = tmp_path / "dl"
    download_manifest(resolver, manifest, out)
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "a.txt").stat().st_mode) == 0o644
    (out / "run.sh").chmod(0o644)
    checkout_manifest(resolver, manifest, out)
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    # the next draft starts with it, and taking the bit away is a change again
    d2 = draft_of(resolver)
    assert d2.lookup("run.sh").entry.extra.get(EXEC_KEY)
    d2.chmod("run.sh", 0o755)
    assert not d2.materialized  # same mode as shown: nothing staged
    d2.chmod("run.sh", 0o644)
    assert commit_draft(d2).status == "committed"
    assert (
        not resolver.registry.manifest(
            resolver.registry.resolve(parse_artifact_name("acme/mnist/mnist:latest"))
        )
        .entries["run.sh"]
        .extra
    )


def test_exec_only_commit_interrupted_is_not_taken_for_done(resolver):
    """Recovery tells an exec-bit-only commit from the version with the same digest."""
    from artifactfs.drafts.recovery import recover

    seed(resolver, BASE)
    d = draft_of(resolver)
    d.chmod("run.sh", 0o700)
    latest = resolver.registry.resolve(parse_artifact_name("acme/mnist/mnist:latest"))
    journal = {
        "digest": latest.digest,
        "manifest_key": "manifests/md5/00/x.json",
        "latest_at_start": latest.version,
        "base_version": 0,
    }
    (d.root / JOURNAL).write_text(json.dumps(journal))
    assert recover(resolver, d.root) == "pending"
    assert d.root.is_dir()


def test_metadata_of_stored_files_costs_no_download(resolver):
    seed(resolver, BASE)
    d = draft_of(resolver)
    fetches = CountingFetches(resolver)
    d.setxattr("sub/b.txt", "user.note", b"kept")
    d.utimens("sub/b.txt", (1_000_000_001, 2_000_000_002))
    if os.geteuid() == 0:
        d.chown("sub/b.txt", 1234, 5678)
    assert fetches.n == 0
    node = d.lookup("sub/b.txt")
    assert node.reads_stored and node.staged.st_mtime_ns == 2_000_000_002
    assert d.getxattr("sub/b.txt", "user.note") == b"kept"
    assert d.listxattr("sub/b.txt") == ["user.note"]  # the marker is hidden
    with pytest.raises(OSError) as e:
        d.setxattr("sub/b.txt", "user.artifactfs.stored", b"{}")
    assert e.value.errno == errno.EPERM
    d.truncate("sub/b.txt", 2)
    assert fetches.n == 1 and (d.files / "sub/b.txt").read_bytes() == b"be"
    assert d.getxattr("sub/b.txt", "user.note") == b"kept"
    if os.geteuid() == 0:
        assert d.lookup("sub/b.txt").staged.st_uid == 1234
    # the parent directory showed the base's look and keeps it
    assert d.lookup("sub").staged.st_mtime_ns == d.base_mtime_ns
    m = d.build_manifest()
    assert m.entries["sub/b.txt"].size == 2 and m.entries["a.txt"].size == 5


def test_modes_owners_and_special_files(resolver):
    d = draft_of(resolver, "fresh")
    owner = (4321, 8765)
    fd = d.open_file("zero", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o000, owner)
    os.close(fd)
    d.writer_closed()
    assert stat.S_IMODE(d.lookup("zero").staged.st_mode) == 0  # as asked, not 0644
    d.mkdir("shared", 0o2775, owner)
    d.mkdir("shared/inner", 0o755, (1, 1))
    inner = d.lookup("shared/inner").staged
    assert inner.st_mode & stat.S_ISGID  # setgid directories pass the bit on...
    if os.geteuid() == 0:
        assert d.lookup("zero").staged.st_uid == 4321
        assert (inner.st_uid, inner.st_gid) == (1, 8765)  # ...and their group
    kinds = [stat.S_IFIFO, stat.S_IFSOCK]
    if os.geteuid() == 0:
        kinds += [stat.S_IFCHR, stat.S_IFBLK]
    for kind in kinds:  # live while the draft does: exactly the mode asked for, no umask
        d.mknod(f"special-{kind}", kind | 0o604, owner, dev=os.makedev(1, 3))
        staged = d.lookup(f"special-{kind}").staged
        assert stat.S_IFMT(staged.st_mode) == kind and stat.S_IMODE(staged.st_mode) == 0o604
    with pytest.raises(OSError) as e:
        d.mknod(f"special-{stat.S_IFIFO}", stat.S_IFIFO | 0o600)
    assert e.value.errno == errno.EEXIST
    d.mknod("plain", stat.S_IFREG | 0o640)
    assert stat.S_IMODE(d.lookup("plain").staged.st_mode) == 0o640


def test_paths_up_to_path_max_and_fallocate(resolver):
    d = draft_of(resolver, "deep")
    parts = ["d" * 250 + f"{i:02d}" for i in range(15)]  # 15 x 253 bytes ~ 3.8 KB: > the host
    for i in range(1, len(parts) + 1):
        d.mkdir("/".join(parts[:i]))
    deep = "/".join(parts) + "/" + "f" * 200
    assert len(deep) > 3900
    write(d, deep, b"deep")
    d.symlink(deep + "-link", "f" * 200)
    d.fallocate(deep, 0, 0, 1 << 20)
    assert d.lookup(deep).staged.st_size == 1 << 20
    FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
    d.fallocate(deep, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096)
    assert d.lookup(deep).staged.st_size == 1 << 20
    result = commit_draft(d)
    assert result.status == "committed", result.describe()
    manifest = resolver.registry.manifest(
        resolver.registry.resolve(parse_artifact_name(result.version))
    )
    assert manifest.entries[deep].size == 1 << 20
    assert manifest.entries[deep + "-link"].digest == manifest.entries[deep].digest


def test_a_draft_belongs_to_its_registry(tmp_path, monkeypatch):
    """Drafts made against registry A (a crashed `mount --registry A`) are committed into A by
    `artifactfs commit --all` under the default configuration, an interrupted commit is
    resolved against A (asking the default registry would commit it twice), status and diff
    read A."""
    reg_a, reg_b = str(tmp_path / "reg-a"), str(tmp_path / "reg-b")
    res_a = Resolver.open(load_config(registry=reg_a), ttl=0)
    seed(res_a, BASE)
    done = open_draft(res_a, res_a.config.write_dir, "acme", "mnist", "mnist")
    write(done, "new.txt", b"made against A")
    # its commit reached A (v1) before the crash; someone else committed v2 since
    v1 = res_a.registry.commit("acme", "mnist", "mnist", "dataset", done.build_manifest())
    seed(res_a, {"other.txt": b"v2"})
    journal = {"digest": v1.digest, "manifest_key": v1.manifest_key, "latest_at_start": 0}
    (done.root / JOURNAL).write_text(json.dumps(journal))
    new = open_draft(res_a, res_a.config.write_dir, "acme", "mnist", "brand-new")
    write(new, "only.txt", b"a new collection of A")
    done.close()
    new.close()
    env = {**os.environ, "ARTIFACTFS_REGISTRY": reg_b}
    cli = [sys.executable, "-m", "artifactfs"]
    status = subprocess.run([*cli, "status"], capture_output=True, text=True, env=env)
    assert status.returncode == 0, status.stderr
    assert f"(registry {reg_a})" in status.stdout and "acme/mnist/brand-new" in status.stdout
    diff = subprocess.run(
        [*cli, "diff", "acme/mnist/brand-new"], capture_output=True, text=True, env=env
    )
    assert diff.returncode == 0, diff.stderr
    assert "A only.txt" in diff.stdout and reg_a in diff.stdout
    out = subprocess.run([*cli, "commit", "--all"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "committed acme/mnist/brand-new:v0" in out.stdout
    res_b = Resolver.open(load_config(registry=reg_b), ttl=0)
    assert res_b.registry.collections("acme", "mnist") == []
    assert [v.version for v in res_a.registry.versions("acme", "mnist", "mnist")] == [0, 1, 2]
    assert not draft_dir(res_a.config.write_dir, "acme", "mnist", "mnist").exists()
    got = version_files(
        res_a, res_a.registry.resolve(parse_artifact_name("acme/mnist/brand-new:v0"))
    )
    assert got == {"only.txt": b"a new collection of A"}
    res_a.close()
    res_b.close()
