"""`artifactfs mount --passthrough` (issue 23): cached version files are read by the kernel from
the cached blob; where it cannot be had, asking for it fails in one line saying why."""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess
import sys

import pytest
from mountutil import commit_files, mounted, open_registry

from artifactfs.fusefs import libfuse_abi
from artifactfs.fusefs.passthrough import unavailable

pytestmark = pytest.mark.fuse

MiB = 1 << 20


def _libfuse_version() -> tuple[int, int, int]:
    return libfuse_abi.current().version


def _why_not_here() -> str | None:
    return unavailable(libfuse_abi.current())


def test_asking_where_libfuse_lacks_it_gives_one_clear_line(tmp_path):
    """libfuse 3.14 (this project's Debian 12 host; pretended elsewhere): the mount does not
    start, and the one line on the terminal says why and what to do."""
    env = {**os.environ, libfuse_abi.VERSION_ENV: "3.14.0"}
    mp = tmp_path / "mnt"
    mp.mkdir()
    for extra in ([], ["-f"]):
        proc = subprocess.run(
            [sys.executable, "-m", "artifactfs", "mount", str(mp), "--passthrough", *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "--passthrough needs libfuse >= 3.17.1" in lines[0]
        assert "3.14.0" in lines[0] and "mount without --passthrough" in lines[0]
        assert "Traceback" not in proc.stderr
    assert not os.path.ismount(mp)


def test_asking_with_write_cache_gives_one_clear_line(tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "artifactfs", "mount", str(mp), "--passthrough", "--write-cache"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "cannot be combined with --write-cache" in proc.stderr


@pytest.mark.skipif(
    _why_not_here() is not None, reason=f"passthrough not available here: {_why_not_here()}"
)
def test_cached_files_pass_through_and_uncached_ones_are_served_as_before(tmp_path):
    url = str(tmp_path / "registry")
    res = open_registry(url)
    big = os.urandom(12 * MiB + 123)  # below the block threshold: its first read caches it whole
    small = os.urandom(5000)
    commit_files(res.registry, tmp_path, "w", {"model.bin": big, "small.txt": small})
    with mounted(tmp_path / "mnt", registry=url, extra_args={"passthrough": True}) as m:
        v = m.path / "acme/proj/w:v0"
        # first open: not cached yet, served through the mount (a sequential read fills it)
        with open(v / "model.bin", "rb", buffering=0) as f:
            assert f.read() == big
        s = m.stats()
        assert s["mount"]["passthrough_misses"] >= 1 and s["mount"]["passthrough_opens"] == 0
        # later opens pass through: the kernel reads the blob, no READ reaches the daemon
        reads = s["mount"]["upcalls"].get("read_buf", 0)
        with open(v / "model.bin", "rb", buffering=0) as f:
            assert hashlib.md5(f.read()).digest() == hashlib.md5(big).digest()
            with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
                assert mm[-1000:] == big[-1000:] and mm[:4096] == big[:4096]
            with open(v / "model.bin", "rb") as g:  # a second open of the same file shares it
                g.seek(7 * MiB)
                assert g.read(MiB) == big[7 * MiB : 8 * MiB]
        s = m.stats()
        assert s["mount"]["passthrough_opens"] == 2
        assert s["mount"]["upcalls"].get("read_buf", 0) - reads <= 1  # stats.d's own file

        # eviction while open: the open file keeps the bytes it was opened with
        cache = res.config.cache_dir
        assert cache is not None
        with open(v / "model.bin", "rb", buffering=0) as f:
            for p in list((cache / "objects").rglob("*")):
                if p.is_file():
                    p.unlink()  # evicted (and its seal) while the file is open
            assert f.read() == big
        # the next open is served through the mount again (fetched from the registry)
        with open(v / "model.bin", "rb", buffering=0) as f:
            assert f.read() == big

        # a blob changed after it was verified never becomes a backing file
        with open(v / "small.txt", "rb") as f:
            assert f.read() == small
        target = next(
            p
            for p in (cache / "objects").rglob("*")
            if p.is_file() and ".seal-" not in p.name and p.stat().st_size == len(small)
        )
        with open(target, "r+b") as f:
            f.write(b"X")  # a stray write into the cache
        opens = m.stats()["mount"]["passthrough_opens"]
        with open(v / "small.txt", "rb") as f:
            assert f.read() == small  # refetched, never the changed bytes
        # drafts keep working on the same mount
        d = m.path / "acme/proj/newdraft"
        d.mkdir(parents=True)
        (d / "a.txt").write_bytes(b"hello")
        assert (d / "a.txt").read_bytes() == b"hello"
        assert m.stats()["mount"]["passthrough_opens"] >= opens
