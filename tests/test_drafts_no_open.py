"""Drafts on a mount whose kernel opens files without asking (no_open, issue 10): writes arrive
with no handle and only a path, open flags never arrive, no release ever comes. O_TRUNC,
appends (also two processes at once), writers across renames and unlinks, concurrent writers,
and a commit refused while a file is open for writing (seen in /proc) must all behave as on a
local disk."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import threading

import pytest
from mountutil import commit_files, mounted, open_registry

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse"),
]

BASE = {"stored.txt": b"stored bytes\n", "log.txt": b"start\n", "big.bin": os.urandom(200_000)}
CLI = [sys.executable, "-m", "artifactfs"]


@pytest.fixture(scope="module", params=[False, True], ids=["page-cache", "write-cache"])
def draft(tmp_path_factory, request):
    base = tmp_path_factory.mktemp("noopen")
    url = str(base / "registry")
    res = open_registry(url, cache_dir=base / "seed-cache")
    commit_files(res.registry, base, "ds", BASE)
    res.close()
    home = base / "home"
    args = {"write_cache": request.param}
    with mounted(base / "mnt", registry=url, home=home, extra_args=args) as m:
        (m.path / ".artifactfs" / "mount.json").read_bytes()  # the first open: no_open from now
        m.extra["env"] = {
            **os.environ,
            "ARTIFACTFS_REGISTRY": url,
            **{f"XDG_{k.upper()}_HOME": str(home / k) for k in ("config", "cache", "data")},
            "XDG_STATE_HOME": str(home / "state"),
        }
        yield m, m.path / "acme/proj/ds"


def _append_lines(path: str, tag: str, n: int) -> None:
    for i in range(n):
        with open(path, "ab") as f:
            f.write(f"{tag}{i:04d}\n".encode())


def test_truncating_opens_and_appends(draft):
    _m, d = draft
    with open(d / "stored.txt", "wb") as f:  # O_TRUNC of a stored (unchanged) file
        f.write(b"new")
    assert (d / "stored.txt").read_bytes() == b"new"
    with open(d / "stored.txt", "wb") as f:  # ... and of a staged one, shorter this time
        f.write(b"n")
    assert (d / "stored.txt").read_bytes() == b"n"
    with open(d / "big.bin", "r+b") as f:  # no O_TRUNC: the bytes after the write stay
        f.write(b"HEAD")
    assert (d / "big.bin").read_bytes() == b"HEAD" + BASE["big.bin"][4:]
    subprocess.run(f"echo more >> {d}/log.txt", shell=True, check=True)
    assert (d / "log.txt").read_bytes() == b"start\nmore\n"
    # two processes appending at once: every line lands whole, none is lost
    path = str(d / "log.txt")
    procs = [
        mp.get_context("fork").Process(target=_append_lines, args=(path, t, 150)) for t in "ab"
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = (d / "log.txt").read_bytes().split(b"\n")[:-1]
    assert lines[:2] == [b"start", b"more"]
    assert sorted(lines[2:]) == sorted(f"{t}{i:04d}".encode() for t in "ab" for i in range(150))


def test_writers_across_rename_unlink_and_each_other(draft):
    _m, d = draft
    (d / "w").mkdir(exist_ok=True)
    with open(d / "w/moving", "wb") as f:
        f.write(b"before ")
        f.flush()
        os.rename(d / "w/moving", d / "w/moved")  # the open file follows its new name
        f.write(b"after")
    assert (d / "w/moved").read_bytes() == b"before after"
    assert not (d / "w/moving").exists()
    # a rename over a file whose fd the mount holds: later writes go to the new file
    (d / "w/target").write_bytes(b"old target")
    (d / "w/source").write_bytes(b"source")
    os.rename(d / "w/source", d / "w/target")
    with open(d / "w/target", "r+b") as f:
        f.seek(0, os.SEEK_END)
        f.write(b"+")
    assert (d / "w/target").read_bytes() == b"source+"
    # unlink, then a new file of the same name: nothing of the old one shows through
    os.unlink(d / "w/target")
    (d / "w/target").write_bytes(b"fresh")
    assert (d / "w/target").read_bytes() == b"fresh"
    assert sorted(os.listdir(d / "w")) == ["moved", "target"]  # nothing hidden left behind
    # threads writing disjoint blocks of one file through their own opens
    block = 64 << 10
    with open(d / "w/shared", "wb") as f:
        f.truncate(8 * block)

    def fill(i: int) -> None:
        with open(d / "w/shared", "r+b") as f:
            f.seek(i * block)
            f.write(bytes([65 + i]) * block)

    threads = [threading.Thread(target=fill, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert (d / "w/shared").read_bytes() == b"".join(bytes([65 + i]) * block for i in range(8))


def test_commit_waits_for_files_open_for_writing(draft):
    m, d = draft
    commit = [*CLI, "commit", "acme/proj/ds"]
    (d / "pending.txt").write_bytes(b"x")
    with open(d / "pending.txt", "ab") as f:
        f.write(b"y")
        f.flush()
        busy = subprocess.run(commit, capture_output=True, text=True, env=m.extra["env"])
        assert busy.returncode != 0 and "open for writing" in busy.stdout + busy.stderr
    done = subprocess.run(commit, capture_output=True, text=True, env=m.extra["env"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert (m.path / "acme/proj/ds:latest/pending.txt").read_bytes() == b"xy"
    assert (d / "pending.txt").read_bytes() == b"xy"  # the draft now shows the new version
