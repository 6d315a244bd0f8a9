"""What an unmount commits is said, and can be waited for: Ctrl-C of a foreground mount,
`artifactfs unmount`, and `fusermount -u` followed by `artifactfs wait`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from mountutil import commit_files, force_unmount, open_registry, wait_until

from artifactfs.fusefs.mount import is_mounted

pytestmark = pytest.mark.fuse
CLI = [sys.executable, "-m", "artifactfs"]
BIG = 48 << 20  # big enough that the commit (hash + copy) outlasts fusermount -u


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def _seed(tmp_path):
    reg = str(tmp_path / "reg")
    commit_files(open_registry(reg).registry, tmp_path, "ds", {"a.txt": b"a"})
    return reg


def _versions(reg: str) -> list[int]:
    res = open_registry(reg)
    try:
        return [v.version for v in res.registry.versions("acme", "proj", "ds")]
    finally:
        res.close()


def test_foreground_ctrl_c_says_what_it_committed(tmp_path):
    reg = _seed(tmp_path)
    mp = tmp_path / "mnt"
    mp.mkdir()
    proc = subprocess.Popen(
        [*CLI, "--registry", reg, "mount", "--foreground", str(mp)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: is_mounted(mp) and (mp / ".artifactfs").exists(), 30)
        (mp / "acme" / "proj" / "ds" / "new.txt").write_text("new")
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        force_unmount(mp)
    assert proc.returncode == 0, err
    assert "committing 1 draft(s) before the mount exits: acme/proj/ds" in err
    assert "acme/proj/ds: committed acme/proj/ds:v1 (2 files" in err
    assert "Ignoring invalid max threads" not in err  # libfuse's line is in the log only
    assert "Traceback" not in err
    assert _versions(reg) == [0, 1]


def test_unmount_and_wait_return_after_the_commit(tmp_path):
    reg = _seed(tmp_path)
    mp = tmp_path / "mnt"
    mp.mkdir()
    try:
        out = run_cli("--registry", reg, "mount", str(mp))
        assert out.returncode == 0, out.stderr
        draft = mp / "acme" / "proj" / "ds"
        (draft / "big.bin").write_bytes(os.urandom(BIG))
        out = run_cli("unmount", str(mp))
        assert out.returncode == 0, out.stderr
        assert "acme/proj/ds: committed acme/proj/ds:v1" in out.stdout
        assert _versions(reg) == [0, 1]

        # fusermount -u returns when the kernel lets go; `artifactfs wait` when the commit is done
        out = run_cli("--registry", reg, "mount", str(mp))
        assert out.returncode == 0, out.stderr
        out = run_cli("--registry", reg, "wait")
        assert out.returncode == 1 and "still mounted" in out.stderr
        (draft / "big2.bin").write_bytes(os.urandom(BIG))
        subprocess.run(["fusermount3", "-u", str(mp)], check=True, timeout=30)
        out = run_cli("--registry", reg, "wait")
        assert out.returncode == 0, out.stderr
        assert _versions(reg) == [0, 1, 2]
        assert "acme/proj/ds: committed acme/proj/ds:v2" in out.stdout
        out = run_cli("--registry", reg, "wait")
        assert out.returncode == 0 and "no unmount in progress" in out.stdout
    finally:
        force_unmount(mp)
