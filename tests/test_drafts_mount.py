"""Drafts on a real mount: shell tools, copy-on-write, commits (unmount and command), upload
counting, EROFS/EXDEV, special files, ENOSPC on a tiny tmpfs write dir, kill -9 of the mount (20 trials)."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mountutil import commit_files, mounted, open_registry, wait_until
from test_drafts_support import check_registry_invariants, tree, version_files

pytestmark = [
    pytest.mark.usefixtures("write_cache_mode"),
    pytest.mark.fuse,
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse"),
]

BASE = {"a.txt": b"alpha\n", "sub/b.txt": b"bravo\n", "sub/deep/c.bin": os.urandom(300_000)}
CLI = [sys.executable, "-m", "artifactfs"]


def sh(cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, shell=True, check=True, cwd=cwd, capture_output=True, timeout=60)


def blob_count(registry: str) -> int:
    return sum(len(files) for _, _, files in os.walk(Path(registry) / "blobs"))


def latest(resolver, name="ds"):
    from artifactfs.resolver.names import parse_artifact_name

    resolver.registry.invalidate()
    return resolver.registry.resolve(parse_artifact_name(f"acme/proj/{name}:latest"))


@pytest.fixture
def reg(tmp_path, monkeypatch):
    url = str(tmp_path / "registry")
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    resolver = open_registry(url)
    commit_files(resolver.registry, tmp_path, "ds", BASE)
    yield url, resolver
    resolver.close()


def test_shell_tools_in_a_draft_then_commit_by_command(reg, tmp_path):
    url, resolver = reg
    local = tmp_path / "local"
    (local / "tree/x").mkdir(parents=True)
    (local / "tree/x/1.txt").write_bytes(b"one")
    (local / "tree/2.bin").write_bytes(os.urandom(5000))
    (local / "sync").mkdir()
    for i in range(20):
        (local / "sync" / f"{i}.dat").write_bytes(f"s{i}".encode() * 10)
    blobs_before = blob_count(url)
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/ds"
        assert sorted(os.listdir(d)) == ["a.txt", "sub"]
        assert (d / "sub/deep/c.bin").read_bytes() == BASE["sub/deep/c.bin"]  # lazily, via cache
        sh(f"mkdir -p {d}/n1/n2/n3")
        sh(f"cp -r {local}/tree {d}/copied")
        sh(f"rsync -a {local}/sync/ {d}/synced/")
        # an editor's save: write a temp file, fsync, rename over the original
        tmp = d / ".a.txt.swp"
        with open(tmp, "wb") as f:
            f.write(b"alpha edited\n")
            os.fsync(f.fileno())
        os.rename(tmp, d / "a.txt")
        sh(f"echo appended >> {d}/sub/b.txt")
        sh(f"truncate -s 1000 {d}/sub/deep/c.bin")
        sh(f"touch {d}/empty && : > {d}/also-empty")
        sh(f"echo over > {d}/copied/x/1.txt")
        sh(f"mv {d}/copied/2.bin {d}/moved.bin")
        sh(f"rm {d}/synced/0.dat && rm -r {d}/n1")
        sh(f"mkdir {d}/gone && rmdir {d}/gone")
        assert (d / "sub/b.txt").read_bytes() == b"bravo\nappended\n"
        assert (d / "sub/deep/c.bin").read_bytes() == BASE["sub/deep/c.bin"][:1000]
        assert os.path.getsize(d / "empty") == 0
        expected = tree(d)
        out = subprocess.run(
            [*CLI, "diff", "acme/proj/ds"], capture_output=True, text=True, check=True
        ).stdout
        assert "M a.txt" in out and "A moved.bin" in out and "D" not in out.replace("# ", "")
        out = subprocess.run(
            [*CLI, "commit", "acme/proj/ds", "--alias", "edited", "--description", "via cli"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert "committed acme/proj/ds:v1" in out.stdout
        assert tree(d) == expected  # the draft now shows the new latest: same files
        assert wait_until(lambda: (m.path / "acme/proj/ds:v1").exists(), 5)
        assert tree(m.path / "acme/proj/ds:v1") == expected
    rec = latest(resolver)
    assert rec.version == 1 and rec.base_version == 0 and rec.description == "via cli"
    assert version_files(resolver, rec) == expected
    assert resolver.registry.run("acme", "proj", rec.logged_by).job_type == "artifactfs-commit"
    # only new content was uploaded: one blob per distinct new content
    new_contents = {hashlib.md5(v).hexdigest() for v in expected.values()} - {
        hashlib.md5(v).hexdigest() for v in BASE.values()
    }
    assert blob_count(url) - blobs_before == len(new_contents)


def test_draft_paths_are_fresh_right_after_a_commit(reg, tmp_path):
    """The kernel caches attributes for the long version timeout; a commit must invalidate the
    draft's paths, or an uncommitted empty dir and old sizes would linger for an hour."""
    url, _resolver = reg
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/ds"
        (d / "keep").mkdir()  # empty directories are not part of a version
        (d / "a.txt").write_bytes(b"x" * 10)
        assert (d / "keep").is_dir() and (d / "a.txt").stat().st_size == 10  # now kernel-cached
        out = subprocess.run([*CLI, "commit", "acme/proj/ds"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert not (d / "keep").exists()
        assert (d / "a.txt").stat().st_size == 10
        (d / "a.txt").write_bytes(b"yy")
        assert (d / "a.txt").stat().st_size == 2


def test_commit_on_unmount_and_copy_on_write(reg, tmp_path):
    url, resolver = reg
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/ds"
        (d / "new.txt").write_bytes(b"new")
        os.unlink(d / "a.txt")
        assert not (d / "a.txt").exists()
        assert (m.path / "acme/proj/ds:v0/a.txt").read_bytes() == b"alpha\n"  # versions unchanged
        os.setxattr(d, "user.artifact.commit.aliases", b"from-mount")
        os.setxattr(d, "user.artifact.commit.metadata", b'{"k": 1}')
        assert os.getxattr(d, "user.artifact.base_version") == b"v0"
        stats = m.stats()["drafts"]
        assert stats["pending_commits"] == 1
        # new entity / project / draft directories persist
        os.makedirs(m.path / "neo/proj2/fresh/inner")
        (m.path / "neo/proj2/fresh/inner/f").write_bytes(b"f")
    rec = latest(resolver)
    assert rec.version == 1 and rec.metadata == {"k": 1}
    assert set(version_files(resolver, rec)) == {"new.txt", "sub/b.txt", "sub/deep/c.bin"}
    assert resolver.registry.aliases("acme", "proj", "ds")["from-mount"] == 1
    from artifactfs.resolver.names import parse_artifact_name

    fresh = resolver.registry.resolve(parse_artifact_name("neo/proj2/fresh:latest"))
    assert version_files(resolver, fresh) == {"inner/f": b"f"}
    with mounted(tmp_path / "mnt", registry=url) as m:  # nothing left to commit
        assert sorted(os.listdir(m.path / "acme/proj/ds")) == ["new.txt", "sub"]
    assert latest(resolver).version == 1


def test_unchanged_draft_commits_nothing(reg, tmp_path):
    url, resolver = reg
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/ds"
        (d / "a.txt").write_bytes(b"alpha\n")  # same bytes
        assert (d / "sub/b.txt").read_bytes() == b"bravo\n"
    assert latest(resolver).version == 0


def test_errno_at_boundaries(reg, tmp_path):
    url, resolver = reg
    commit_files(resolver.registry, tmp_path, "other", {"o.txt": b"o"})
    with mounted(tmp_path / "mnt", registry=url) as m:
        p = m.path / "acme/proj"
        for fn in (
            lambda: (p / "ds:v0/new").write_bytes(b"x"),
            lambda: (p / "ds:v0/a.txt").write_bytes(b"x"),
            lambda: os.mkdir(p / "ds:v0/dir"),
            lambda: os.rename(p / "ds/a.txt", p / "ds:v0/a2.txt"),
            lambda: os.unlink(p / "ds:v0/a.txt"),
        ):
            with pytest.raises(OSError) as e:
                fn()
            assert e.value.errno == errno.EROFS
        with pytest.raises(OSError) as e:
            os.rename(p / "ds/a.txt", p / "other/a.txt")
        assert e.value.errno == errno.EXDEV
        sh(f"mv {p}/ds/a.txt {p}/other/a.txt")  # mv falls back to copy + delete
        assert (p / "other/a.txt").read_bytes() == b"alpha\n"
        assert not (p / "ds/a.txt").exists()
        with pytest.raises(OSError) as e:
            os.setxattr(p / "ds", "user.artifact.commit.aliases", b"v3")
        assert e.value.errno == errno.EINVAL


@pytest.fixture
def tiny_write_dir(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    wd = tmp_path / "tiny"
    wd.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(wd)], check=True)
    try:
        yield wd
    finally:
        subprocess.run(["umount", "-l", str(wd)], check=False)


def test_full_write_dir_gives_enospc_and_corrupts_nothing(reg, tmp_path, tiny_write_dir):
    url, resolver = reg
    args = {"overrides": {"write_dir": str(tiny_write_dir)}}
    keep = os.urandom(500_000)
    with mounted(tmp_path / "mnt", registry=url, extra_args=args) as m:
        d = m.path / "acme/proj/ds"
        (d / "keep.bin").write_bytes(keep)
        with pytest.raises(OSError) as e, open(d / "big.bin", "wb") as f:
            for _ in range(100):
                f.write(os.urandom(1 << 20))
                f.flush()
        assert e.value.errno == errno.ENOSPC
        assert (d / "keep.bin").read_bytes() == keep
        os.unlink(d / "big.bin")
        os.unlink(d / "a.txt")  # the journal still works once there is room
        (d / "after.txt").write_bytes(b"after")
    rec = latest(resolver)
    files = version_files(resolver, rec)
    assert files["keep.bin"] == keep and files["after.txt"] == b"after"
    assert "big.bin" not in files and "a.txt" not in files


def _random_ops(d: Path, rng: random.Random, model: dict[str, bytes], trial: int) -> None:
    for i in range(rng.randint(1, 6)):
        kind = rng.choice(["write", "append", "rm", "mv", "mkfile"])
        files = sorted(model)
        if kind in ("append", "rm", "mv") and not files:
            kind = "write"
        if kind == "write" or kind == "mkfile":
            path = rng.choice(["w", "dir/w", "dir/sub/w"]) + f"{trial}-{i}"
            (d / path).parent.mkdir(parents=True, exist_ok=True)
            data = os.urandom(rng.randint(0, 5000))
            (d / path).write_bytes(data)
            model[path] = data
        elif kind == "append":
            path = rng.choice(files)
            with open(d / path, "ab") as f:
                f.write(b"+")
            model[path] += b"+"
        elif kind == "rm":
            path = rng.choice(files)
            os.unlink(d / path)
            del model[path]
        else:
            path = rng.choice(files)
            new = f"mv{trial}-{i}"
            os.rename(d / path, d / new)
            model[new] = model.pop(path)


@pytest.mark.slow
def test_kill_9_of_the_mount_keeps_drafts_20_trials(reg, tmp_path):
    """Each trial: mount, check the draft equals what the previous (killed) mount left, make
    random changes, SIGKILL the mount. Finally a clean mount commits the result."""
    url, resolver = reg
    rng = random.Random(1234)
    model = dict(BASE)
    for trial in range(20):
        with mounted(tmp_path / "mnt", registry=url) as m:
            d = m.path / "acme/proj/ds"
            assert tree(d) == model, f"trial {trial}: draft differs after kill -9"
            _random_ops(d, rng, model, trial)
            os.killpg(m.proc.pid, signal.SIGKILL)
            m.proc.wait(timeout=10)
    assert latest(resolver).version == 0  # nothing was committed by a crashed mount
    with mounted(tmp_path / "mnt", registry=url) as m:
        assert tree(m.path / "acme/proj/ds") == model
    rec = latest(resolver)
    assert rec.version == 1 and version_files(resolver, rec) == model
    assert check_registry_invariants(resolver) == 2
    shutil.rmtree(tmp_path / "mnt", ignore_errors=True)


def test_status_diff_commit_take_the_drafts_path(reg, tmp_path):
    """`artifactfs diff MNT/acme/proj/ds`, `status .` inside it and `commit` of the path name
    the draft, in the mount's own write dir; a path in a version names its draft."""
    url, resolver = reg

    def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)

    write_dir = tmp_path / "elsewhere"  # not the configured one: the path says which
    with mounted(
        tmp_path / "mnt", registry=url, extra_args={"overrides": {"write_dir": str(write_dir)}}
    ) as m:
        d = m.path / "acme/proj/ds"
        out = cli("diff", str(d))
        assert out.returncode == 0 and "no changes" in out.stdout, out.stderr
        (d / "new.txt").write_text("new")
        (d / "sub").mkdir(exist_ok=True)
        out = cli("diff", str(d))
        assert out.returncode == 0, out.stderr
        assert "A new.txt" in out.stdout
        out = cli("status", ".", cwd=d / "sub")
        assert out.returncode == 0, out.stderr
        assert "acme/proj/ds" in out.stdout and "unrecognized" not in out.stderr
        out = cli("diff", str(m.path / "acme/proj/ds:v0/sub"))
        assert out.returncode == 1 and "read-only" in out.stderr and str(d) in out.stderr
        out = cli("commit", ".", cwd=d)
        assert out.returncode == 0, out.stderr
        assert "committed acme/proj/ds:v1" in out.stdout
    assert latest(resolver).version == 1


def test_fifos_and_sockets_live_in_a_draft_and_a_commit_lists_them(reg, tmp_path):
    """A draft is a local directory: mkfifo, a unix socket's bind and (as root) mknod work,
    the FIFO passes bytes, rm and mv work on them; a commit skips them and says so."""
    import socket
    import stat
    import threading

    url, resolver = reg
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/ds"
        os.mkfifo(d / "pipe", 0o640)
        assert stat.S_ISFIFO(os.lstat(d / "pipe").st_mode)
        assert stat.S_IMODE(os.lstat(d / "pipe").st_mode) == 0o640
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append((d / "pipe").read_bytes()))
        reader.start()
        (d / "pipe").write_bytes(b"through the fifo")
        reader.join(timeout=10)
        assert got == [b"through the fifo"]
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        back = os.getcwd()  # (tmp_path is removed once the test passes: never stay in it)
        os.chdir(d)  # a unix socket path is short; bind relative to the draft
        try:
            server.bind("sock")
        finally:
            os.chdir(back)
        server.close()
        assert stat.S_ISSOCK(os.lstat(d / "sock").st_mode)
        if os.geteuid() == 0:
            os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
            assert os.lstat(d / "null").st_rdev == os.makedev(1, 3)
        os.rename(d / "pipe", d / "pipe2")
        os.mkfifo(d / "gone")
        os.unlink(d / "gone")
        (d / "new.txt").write_text("new")
        out = subprocess.run(
            [*CLI, "commit", "acme/proj/ds"], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert "committed acme/proj/ds:v1" in out.stdout
        assert "pipe2: FIFO, not committed" in out.stdout
        assert "sock: socket, not committed" in out.stdout
    rec = latest(resolver)
    assert sorted(version_files(resolver, rec)) == [
        "a.txt",
        "new.txt",
        "sub/b.txt",
        "sub/deep/c.bin",
    ]


def test_commit_through_a_running_mount_shows_progress(
    reg, tmp_path, monkeypatch, capsys, recorded_bars
):
    """`artifactfs commit NAME` while a mount runs: the mount commits, and the command draws a
    progress bar from the mount's reports (a terminal only: piped, stderr stays empty)."""
    from artifactfs.cli import draft_cmds, main

    url, _resolver = reg
    with mounted(tmp_path / "mnt", registry=url) as m:
        d = m.path / "acme/proj/ds"
        (d / "big.bin").write_bytes(os.urandom(24 << 20))
        monkeypatch.setattr(draft_cmds, "progress_bar", recorded_bars)
        assert main(["commit", "acme/proj/ds"]) == 0
        out, err = capsys.readouterr()
        assert "committed acme/proj/ds:v1" in out and err == ""
    ((desc, total, steps),) = recorded_bars.bars
    assert desc == "commit acme/proj/ds" and total is not None and total >= 24 << 20
    assert sum(steps) == total
