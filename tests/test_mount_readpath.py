"""The read path's costs, counted (issue 10): requests that reach the mount per small-file read,
cold and warm, and the sibling read-ahead's window on a remote store. Counts come from the
mount's own stats.json (`upcalls`, and what the C fast path answered), so these are counts,
never times."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from mountutil import commit_files, mounted, open_registry, wait_until

pytestmark = pytest.mark.fuse

FILES = {f"train/c{i % 2}/img{i:03d}.png": os.urandom(3000 + i) for i in range(40)}
FILES.update({f"val/v{i}.png": os.urandom(2000) for i in range(5)})


def _upcalls(m) -> dict[str, int]:
    """Requests that reached the daemon, by callback: answered in Python (`upcalls`) or by
    the C fast path (fusefs/fastpath.py: lookups and reads of paths Python answered before)."""
    mount = m.stats()["mount"]
    out = dict(mount["upcalls"])
    fast = mount.get("fast_path", {})
    for key, callback in (("lookups", "getattr"), ("reads", "read_buf")):
        out[callback] = out.get(callback, 0) + fast.get(key, 0)
    return out


def _delta(m, before: dict[str, int], overhead: dict[str, int]) -> dict[str, int]:
    after = _upcalls(m)
    out = {k: after.get(k, 0) - before.get(k, 0) - overhead.get(k, 0) for k in after}
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("read_only", [False, True])
def test_small_file_reads_cost_one_lookup_and_one_read_then_nothing(tmp_path, read_only):
    url = str(tmp_path / "registry")
    res = open_registry(url)
    commit_files(res.registry, tmp_path, "ds", FILES)
    with mounted(tmp_path / "mnt", registry=url, extra_args={"read_only": read_only}) as m:
        v = m.path / "acme/proj/ds:v0"
        _upcalls(m)  # the first open: ENOSYS, and no_open from now on
        a = _upcalls(m)
        b = _upcalls(m)
        overhead = {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}  # stats.json's own
        assert overhead == {"getattr": 1, "read_buf": 1}
        assert _delta(m, b, overhead) == {}  # the same again: a stable overhead
        names = sorted(os.listdir(v / "train/c0"))[:10]
        paths = [v / "train/c0" / n for n in names]
        before = _upcalls(m)
        for p in paths:  # Python's buffered open(), as PIL and torchvision use it
            with open(p, "rb") as f:
                assert f.read() == FILES[f"train/c0/{p.name}"]
        # one lookup and one read per file; no open, release, flush or ioctl reaches Python
        assert _delta(m, before, overhead) == {"getattr": 10, "read_buf": 10}
        # warm: the kernel serves the pages and attributes it kept. On a writable mount a
        # READ marks the file's atime stale, so the next stat (cat's too) asks once more;
        # a read-only mount has no atime to keep
        for expected in ({} if read_only else {"getattr": 10}, {}):
            before = _upcalls(m)
            for p in paths:
                with open(p, "rb") as f:
                    f.read()
            subprocess.run(["cat", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
            assert _delta(m, before, overhead) == expected
        assert m.stats()["mount"]["readahead_windows"] == 0  # a local registry: no read-ahead
        # through the alias, as loaders' paths go: the kernel keeps the symlink's target
        before = _upcalls(m)
        for p in paths:
            (m.path / "acme/proj/ds:latest" / p.relative_to(v)).read_bytes()
        assert _delta(m, before, overhead) == {"getattr": 1, "readlink": 1}  # once, not per file
        # stats.json itself (a symlink to a fresh snapshot) shows numbers a moment old at most
        link = m.path / ".artifactfs/stats.json"
        first = json.loads(link.read_text())["mount"]["upcalls"]
        assert wait_until(lambda: json.loads(link.read_text())["mount"]["upcalls"] != first, 5)


def test_write_cache_costs_one_getattr_per_open_of_any_file(tmp_path):
    """The trade-off `--write-cache` makes (docs/SEMANTICS.md, "Connection modes"): with the
    kernel's write-back cache every close invalidates the file's st_blocks, so each later open
    (its fstat) asks the mount once more, version files included. Without it: nothing."""
    url = str(tmp_path / "registry")
    res = open_registry(url)
    commit_files(res.registry, tmp_path, "ds", FILES)
    args = {"write_cache": True}
    with mounted(tmp_path / "mnt", registry=url, extra_args=args) as m:
        assert json.loads((m.path / ".artifactfs/mount.json").read_text())["write_cache"] is True
        v = m.path / "acme/proj/ds:v0/train/c0"
        paths = [v / n for n in sorted(os.listdir(v))[:10]]
        _upcalls(m)
        a = _upcalls(m)
        b = _upcalls(m)
        overhead = {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}
        for p in paths:
            p.read_bytes()
        for _ in range(2):  # warm, again and again: one GETATTR per open, no READ
            before = _upcalls(m)
            for p in paths:
                with open(p, "rb") as f:
                    f.read()
            assert _delta(m, before, overhead) == {"getattr": 10}


@pytest.mark.parametrize("registry_url", ["s3"], indirect=True)
def test_sibling_readahead_fetches_a_bounded_window_of_the_directory(registry_url, tmp_path):
    res = open_registry(registry_url)
    commit_files(res.registry, tmp_path, "ds", FILES)
    args = {"readahead_files": 8}
    with mounted(tmp_path / "mnt", registry=registry_url, extra_args=args) as m:
        v = m.path / "acme/proj/ds:v0"
        first = v / "train/c0/img000.png"
        assert first.read_bytes() == FILES["train/c0/img000.png"]
        time.sleep(0.2)
        assert m.stats()["mount"]["readahead_files"] == 0  # one miss is not a pattern
        assert (v / "train/c0/img002.png").read_bytes() == FILES["train/c0/img002.png"]
        assert wait_until(lambda: m.stats()["mount"]["readahead_fetched"] == 8, 10)
        time.sleep(0.3)
        stats = m.stats()
        assert stats["mount"]["readahead_windows"] == 1
        assert stats["mount"]["readahead_files"] == 8  # the budget, not the 20 files there
        assert stats["cache"]["misses"] == 2 + 8  # nothing of train/c1 or val was fetched
        cached_before = stats["cache"]["misses"]
        for i in range(4, 20, 2):  # the window: these are now served from the cache
            name = f"train/c0/img{i:03d}.png"
            assert (v / name).read_bytes() == FILES[name]
        assert m.stats()["cache"]["misses"] == cached_before
