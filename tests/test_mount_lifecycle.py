"""Starting and stopping: the CLI daemon, unmount, SIGTERM, clear errors, big versions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mountutil import commit_files, force_unmount, mounted, open_registry, wait_until

from artifactfs.fusefs.mount import is_mounted

pytestmark = pytest.mark.fuse
CLI = [sys.executable, "-m", "artifactfs"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_cli_mount_in_background_and_unmount(tmp_path):
    reg = str(tmp_path / "reg")
    res = open_registry(reg)
    commit_files(res.registry, tmp_path, "ds", {"a.txt": b"a"})
    mp = tmp_path / "mnt"
    mp.mkdir()
    try:
        out = run_cli("--registry", reg, "mount", str(mp))
        assert out.returncode == 0, out.stderr
        # usable as soon as the command returns
        assert (mp / "acme" / "proj" / "ds:v0" / "a.txt").read_bytes() == b"a"
        again = run_cli("--registry", reg, "mount", str(mp))
        assert again.returncode == 1 and "busy" in again.stderr
        assert "Traceback" not in again.stderr
        pid = json.loads((mp / ".artifactfs" / "mount.json").read_text())["pid"]
        out = run_cli("unmount", str(mp))
        assert out.returncode == 0, out.stderr
        assert not is_mounted(mp)
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 5)
    finally:
        force_unmount(mp)


def test_clear_errors_for_bad_mountpoints(tmp_path):
    out = run_cli("mount", str(tmp_path / "missing"))
    assert out.returncode == 1 and "does not exist" in out.stderr
    assert "Traceback" not in out.stderr
    (tmp_path / "file").write_text("x")
    out = run_cli("mount", str(tmp_path / "file"))
    assert out.returncode == 1 and "not a directory" in out.stderr
    out = run_cli("unmount", str(tmp_path))
    assert out.returncode == 1 and "not mounted" in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_cleanly(tmp_path, sig):
    reg = str(tmp_path / "reg")
    commit_files(open_registry(reg).registry, tmp_path, "ds", {"a.txt": b"a"})
    with mounted(tmp_path / "mnt", registry=reg) as m:
        assert (m.path / "acme" / "proj" / "ds:v0" / "a.txt").read_bytes() == b"a"
        assert m.proc is not None
        m.proc.send_signal(sig)
        assert m.proc.wait(timeout=15) == 0
        assert not is_mounted(m.path)
        assert "unmounted" in m.log()


def test_fusermount_u_unmounts_cleanly(tmp_path):
    reg = str(tmp_path / "reg")
    commit_files(open_registry(reg).registry, tmp_path, "ds", {"a.txt": b"a"})
    with mounted(tmp_path / "mnt", registry=reg) as m:
        subprocess.run(["fusermount3", "-u", str(m.path)], check=True, timeout=10)
        assert m.proc is not None and m.proc.wait(timeout=15) == 0


def test_big_version_lists_fast_without_loading_everything(tmp_path):
    """100k entries here (1M in bench/bench_mount.py): the index, not a dict, serves lookups."""
    from artifactfs.resolver.manifest import Manifest, ManifestEntry

    reg = str(tmp_path / "reg")
    res = open_registry(reg)
    blob = tmp_path / "blob"
    blob.write_bytes(b"shared")
    from artifactfs.resolver.manifest import md5_b64_of_file

    d = md5_b64_of_file(str(blob))
    entries = [
        ManifestEntry(f"d{i // 1000:03d}/f{i:06d}", d, 6, local_path=str(blob))
        for i in range(100_000)
    ]
    res.registry.commit("acme", "proj", "big", "dataset", Manifest(entries))
    with mounted(tmp_path / "mnt", registry=reg) as m:
        v = m.path / "acme" / "proj" / "big:v0"
        t = time.monotonic()
        top = os.listdir(v)
        first_ls = time.monotonic() - t
        assert len(top) == 100 and first_ls < 5
        assert len(os.listdir(v / "d042")) == 1000
        assert (v / "d099" / "f099999").read_bytes() == b"shared"


def test_kernel_readahead_is_raised_to_the_mount_option(tmp_path):
    """The daemon finds its own mount's device in mountinfo (a stat from inside would be an
    upcall to itself that keeps the mount busy) and raises the kernel's readahead window."""
    reg = str(tmp_path / "reg")
    commit_files(open_registry(reg).registry, tmp_path, "ds", {"a.txt": b"a"})
    with mounted(tmp_path / "mnt", registry=reg, extra_args={"max_readahead": 2 << 20}) as m:
        st = os.stat(m.path)
        knob = Path(f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb")
        assert wait_until(lambda: knob.read_text().strip() == "2048", 10), knob.read_text()
