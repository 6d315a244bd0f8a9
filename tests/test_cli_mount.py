"""`artifactfs mount` refusals a person can act on, and the demo finding a free mountpoint.

Real processes and real FUSE mounts: what matters is the exit status and the one line printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mountutil import commit_files, force_unmount, open_registry

pytestmark = pytest.mark.fuse
CLI = [sys.executable, "-m", "artifactfs"]
ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def registry(tmp_path):
    reg = str(tmp_path / "reg")
    res = open_registry(reg)
    commit_files(res.registry, tmp_path, "ds", {"a.txt": b"a"})
    res.close()
    return reg


@pytest.fixture
def mountpoints(tmp_path):
    made: list[Path] = []

    def make(name: str) -> Path:
        p = tmp_path / name
        p.mkdir(exist_ok=True)
        made.append(p)
        return p

    yield make
    for p in made:
        force_unmount(p)


def test_nonempty_mountpoint_is_refused_unless_asked(registry, mountpoints):
    mp = mountpoints("mnt")
    (mp / "notes.txt").write_text("mine")
    out = run_cli("--registry", registry, "mount", str(mp))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "not empty" in out.stderr and "hide" in out.stderr and "--nonempty" in out.stderr
    assert not os.path.ismount(mp) and (mp / "notes.txt").read_text() == "mine"

    out = run_cli("--registry", registry, "mount", "--nonempty", str(mp))
    assert out.returncode == 0, out.stderr
    assert (mp / "acme" / "proj" / "ds:v0" / "a.txt").read_bytes() == b"a"
    assert not (mp / "notes.txt").exists()  # hidden while mounted
    assert run_cli("unmount", str(mp)).returncode == 0
    assert (mp / "notes.txt").read_text() == "mine"


def test_second_mount_on_the_same_drafts_suggests_its_own(registry, mountpoints, tmp_path):
    first, second = mountpoints("one"), mountpoints("two")
    assert run_cli("--registry", registry, "mount", str(first)).returncode == 0
    t = time.monotonic()
    out = run_cli("--registry", registry, "mount", str(second))
    assert time.monotonic() - t < 10  # refused up front, not after waiting for the lock
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "in use by another mount" in out.stderr
    assert "--write-dir" in out.stderr and "--read-only" in out.stderr
    assert not os.path.ismount(second)
    # both suggestions work
    out = run_cli("--registry", registry, "mount", "--read-only", str(second))
    assert out.returncode == 0, out.stderr
    assert run_cli("unmount", str(second)).returncode == 0
    out = run_cli(
        "--registry", registry, "mount", "--write-dir", str(tmp_path / "drafts2"), str(second)
    )
    assert out.returncode == 0, out.stderr


def test_demo_picks_a_free_mountpoint_when_the_default_is_busy(registry, tmp_path):
    """The default ($TMPDIR/artifactfs-demo) holds files here: the demo mounts beside it."""
    busy = tmp_path / "artifactfs-demo"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    env = {**os.environ, "TMPDIR": str(tmp_path), "ARTIFACTFS_REGISTRY": registry}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--unmount"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    try:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"{busy} is busy (it is not empty); mounting at {tmp_path}/artifactfs-demo-" in (
            proc.stdout
        )
        assert "ds:v0/" in proc.stdout and "unmounted" in proc.stdout
        assert (busy / "keep.txt").read_text() == "x"
    finally:
        for p in tmp_path.glob("artifactfs-demo-*"):
            force_unmount(p)
