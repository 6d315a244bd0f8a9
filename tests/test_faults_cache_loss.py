"""Issue 20 items 4 and 6: the cache survives its own loss, and says so once.

Before: `rm -rf` of the cache dir under a live mount made reads of files >= 16 MiB fail with
ENOENT (even after the dir was made again) until remount; a read-only cache dir gave EROFS on
most reads, and `download()` failed with EROFS instead of writing straight into its
destination; a full cache disk logged the same warning once per block (hundreds per file).
Now a lost cache dir is made again (one log line) and a read-only one is read past (direct
reads, one log line), and the cache is used again as soon as it is usable: no remount.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mountutil import commit_files, mounted, open_registry

import artifactfs as af

pytestmark = pytest.mark.fuse

MiB = 1 << 20


def _files() -> dict[str, bytes]:
    big = os.urandom(20 * MiB)
    small = os.urandom(100_000)
    return {
        "small.bin": small,
        "big.bin": big,
        "after-rm.bin": big[::-1],
        "after-rm-small.bin": small[::-1],
        "ro.bin": big[1:] + b"r",
        "ro-small.bin": small[1:] + b"r",
        "back.bin": big[2:] + b"bk",
    }


def _read_only(path: Path):
    """`path` made read-only in place (a read-only bind mount: root ignores mode bits)."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path), str(path)], check=True)
    except BaseException:
        subprocess.run(["umount", "-l", str(path)])  # never leave the bind mount behind
        raise


@pytest.mark.parametrize("registry_url", ["local", "s3"], indirect=True)
def test_deleted_or_read_only_cache_dir_gives_direct_reads_and_recovers(registry_url, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    files = _files()
    commit_files(open_registry(registry_url).registry, tmp_path, "ds", files)
    cache = tmp_path / "cache"
    os.environ["ARTIFACTFS_CACHE_DIR"] = str(cache)
    try:
        with mounted(tmp_path / "mnt", registry=registry_url) as m:
            v0 = m.path / "acme" / "proj" / "ds:v0"
            assert (v0 / "small.bin").read_bytes() == files["small.bin"]
            assert (v0 / "big.bin").read_bytes() == files["big.bin"]

            shutil.rmtree(cache)
            for name in ("after-rm.bin", "after-rm-small.bin", "big.bin"):
                assert (v0 / name).read_bytes() == files[name], name

            try:
                _read_only(cache)
                for name in ("ro.bin", "ro-small.bin"):
                    assert (v0 / name).read_bytes() == files[name], name
                    assert (v0 / name).read_bytes() == files[name], name  # and again
                art = af.Api(registry=registry_url).artifact("acme/proj/ds:v0")
                root = Path(art.download(str(tmp_path / "dl")))
                for name, data in files.items():
                    assert (root / name).read_bytes() == data, name
            finally:
                subprocess.run(["umount", "-l", str(cache)])  # fds kept open

            before = m.stats()["cache"]["bytes_fetched"]
            assert (v0 / "back.bin").read_bytes() == files["back.bin"]
            assert m.stats()["cache"]["bytes_fetched"] > before
            cached = [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size >= MiB]
            assert cached, "the cache is used again once it is writable, without a remount"
            log = m.log()
        assert log.count("was deleted; made again") == 1, log
        assert log.count("unusable (Read-only file system)") == 1, log
        assert "Traceback" not in log
    finally:
        os.environ.pop("ARTIFACTFS_CACHE_DIR", None)


def test_full_cache_disk_warns_once_not_once_per_block(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tiny)])
    if r.returncode:
        pytest.skip("cannot mount a tmpfs")
    url = str(tmp_path / "registry")
    data = os.urandom(40 * MiB)
    commit_files(open_registry(url).registry, tmp_path, "ds", {"big.bin": data})
    os.environ["ARTIFACTFS_CACHE_DIR"] = str(tiny / "cache")
    try:
        with mounted(tmp_path / "mnt", registry=url) as m:
            assert (m.path / "acme" / "proj" / "ds:v0" / "big.bin").read_bytes() == data
            log = m.log()
        warnings = [line for line in log.splitlines() if "WARNING" in line]
        assert 1 <= len(warnings) <= 2, "\n".join(warnings)  # 10 blocks: 10+ lines before
    finally:
        os.environ.pop("ARTIFACTFS_CACHE_DIR", None)
        subprocess.run(["umount", "-l", str(tiny)])
