"""Mount behaviour that depends on the backend: laziness, alias TTL, offline, slow fetches."""

from __future__ import annotations

import errno
import os
import random
import subprocess
import threading
import time

import pytest
from mountutil import commit_files, mounted, open_registry, wait_until

pytestmark = pytest.mark.fuse

rng = random.Random(11)


@pytest.fixture
def seeded(registry_url, tmp_path):
    res = open_registry(registry_url)
    files = {f"f{i}.bin": rng.randbytes(10_000 + i) for i in range(5)}
    rec = commit_files(res.registry, tmp_path, "ds", files)
    return res, files, rec


def test_reading_one_file_fetches_only_that_entry(seeded, registry_url, tmp_path):
    _res, files, _ = seeded
    with mounted(tmp_path / "mnt", registry=registry_url) as m:
        v = m.path / "acme" / "proj" / "ds:v0"
        assert sorted(os.listdir(v)) == sorted(files)
        for name in files:  # stat everything: listing and attributes need no blob
            os.stat(v / name)
        assert (v / "f3.bin").read_bytes() == files["f3.bin"]
        stats = m.stats()
        if "cache" in stats:
            assert stats["cache"]["bytes_fetched"] == len(files["f3.bin"])
        assert stats["mount"]["bytes_read"] == len(files["f3.bin"])


def test_alias_move_visible_after_ttl_without_remount(seeded, registry_url, tmp_path):
    res, _files, rec0 = seeded
    with mounted(tmp_path / "mnt", registry=registry_url, ttl=0.5) as m:
        proj = m.path / "acme" / "proj"
        assert os.readlink(proj / "ds:latest") == "ds:v0"
        assert (proj / "ds:latest" / "f0.bin").exists()
        commit_files(res.registry, tmp_path, "ds", {"new.txt": b"new"}, aliases=("best",))
        res.registry.set_alias(rec0, "prod")
        assert wait_until(lambda: os.readlink(proj / "ds:latest") == "ds:v1", timeout=10)
        assert (proj / "ds:latest" / "new.txt").read_bytes() == b"new"
        assert not (proj / "ds:latest" / "f0.bin").exists()
        assert "ds:v1" in os.listdir(proj) and os.readlink(proj / "ds:best") == "ds:v1"
        assert os.readlink(proj / "ds:prod") == "ds:v0"


def test_offline_cached_readable_uncached_eio_fast(seeded, registry_url, tmp_path):
    _res, files, _ = seeded
    with mounted(tmp_path / "mnt", registry=registry_url, ttl=0.2, faults=True) as m:
        proj = m.path / "acme" / "proj"
        v = proj / "ds:v0"
        assert (v / "f1.bin").read_bytes() == files["f1.bin"]
        assert "ds:latest" in os.listdir(proj)  # seen once: served while offline
        m.offline()
        time.sleep(0.4)  # let the TTL expire so listings must go to the backend
        assert "ds:v0" in os.listdir(proj)  # last good listing
        assert os.readlink(proj / "ds:latest") == "ds:v0"
        # cached content: page cache dropped or not, the blob cache serves it
        subprocess.run(["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"], capture_output=True)
        assert (v / "f1.bin").read_bytes() == files["f1.bin"]
        t = time.monotonic()
        with pytest.raises(OSError) as e:
            (v / "f2.bin").read_bytes()
        assert e.value.errno == errno.EIO
        assert time.monotonic() - t < 2.0
        assert m.stats()["mount"]["backend_errors"] >= 1
        m.offline(False)
        assert (v / "f2.bin").read_bytes() == files["f2.bin"]


def test_slow_fetch_does_not_freeze_ls(seeded, registry_url, tmp_path):
    _res, files, _ = seeded
    with mounted(tmp_path / "mnt", registry=registry_url, faults=True) as m:
        proj = m.path / "acme" / "proj"
        os.listdir(proj / "ds:v0")
        m.delay(3.0)
        reader = threading.Thread(target=lambda: (proj / "ds:v0" / "f4.bin").read_bytes())
        reader.start()
        time.sleep(0.3)  # the reader is now blocked inside the backend
        t = time.monotonic()
        names = os.listdir(proj / "ds:v0")
        os.stat(proj / "ds:v0" / "f0.bin")
        elapsed = time.monotonic() - t
        assert sorted(names) == sorted(files)
        assert elapsed < 0.5, f"ls waited {elapsed:.2f}s behind a slow fetch"
        m.delay(0)
        reader.join(15)
        assert not reader.is_alive()
