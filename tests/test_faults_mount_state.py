"""Issue 20 item 6: a dead mountpoint, a mount's own write dir, a frozen server.

Before: after kill -9 of the daemon, `artifactfs mount` on the dead mountpoint said "busy"
(users had to run `unmount` first); a mount started with `--write-dir` was invisible to
`commit`/`status` ("no draft"); behind a frozen server a cold read of a big file answered
after more than the deadline. Now `mount` cleans the dead mountpoint itself (one log line),
the CLI finds the write dir a live mount states in `.artifactfs/mount.json`, and a cold read
behind a frozen server answers EIO within the deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from mountutil import commit_files, force_unmount, mounted, open_registry, wait_until

import artifactfs as af

servers = pytest.importorskip("servers")
pytestmark = pytest.mark.fuse
PY = sys.executable


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "artifactfs", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_mount_cleans_a_dead_mountpoint_itself(tmp_path):
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", {"a.txt": b"alpha"})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = tmp_path / "mount.log"
    try:
        first = _cli("mount", str(mnt), "--registry", url, "--log-file", str(log))
        assert first.returncode == 0, first.stderr
        pid = json.loads((mnt / ".artifactfs" / "mount.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10)
        with pytest.raises(OSError):
            os.listdir(mnt)  # ENOTCONN: the kernel keeps the dead mount

        again = _cli("mount", str(mnt), "--registry", url, "--log-file", str(log))
        assert again.returncode == 0, again.stderr
        assert "busy" not in again.stderr
        assert (mnt / "acme" / "proj" / "ds:v0" / "a.txt").read_bytes() == b"alpha"
        assert "cleaned up a dead mount" in again.stderr + log.read_text()
    finally:
        _cli("unmount", str(mnt))
        force_unmount(mnt)


def test_commit_and_status_find_a_mounts_own_write_dir(tmp_path):
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", {"a.txt": b"alpha"})
    write_dir = tmp_path / "elsewhere"
    with mounted(
        tmp_path / "mnt", registry=url, extra_args={"overrides": {"write_dir": str(write_dir)}}
    ) as m:
        (m.path / "acme" / "proj" / "ds" / "new.txt").write_text("a draft file")
        status = _cli("status", ARTIFACTFS_REGISTRY=url)
        assert status.returncode == 0 and "acme/proj/ds" in status.stdout, status.stdout
        done = _cli("commit", "acme/proj/ds", ARTIFACTFS_REGISTRY=url)
        assert done.returncode == 0, done.stdout + done.stderr
    art = af.Api(registry=url).artifact("acme/proj/ds:v1")
    root = art.download(str(tmp_path / "v1"))
    assert (tmp_path / "v1" / "new.txt").read_text() == "a draft file", root


BOUND = 4.0


@pytest.fixture
def own_seaweed(tmp_path):
    try:
        server = servers.SeaweedFS.start(tmp_path / "weed", in_memory=True)
    except servers.ServerUnavailable as e:
        pytest.skip(f"SeaweedFS unavailable: {e}")
    yield server
    try:
        os.kill(server.proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    server.stop()


@pytest.mark.slow
def test_cold_read_of_a_big_file_behind_a_frozen_server_answers_within_the_deadline(
    own_seaweed, tmp_path, monkeypatch
):
    for var, value in (
        ("AWS_ACCESS_KEY_ID", own_seaweed.access_key),
        ("AWS_SECRET_ACCESS_KEY", own_seaweed.secret_key),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("ARTIFACTFS_S3_ENDPOINT_URL", own_seaweed.endpoint_url),
        ("ARTIFACTFS_TIMEOUT", str(BOUND)),
    ):
        monkeypatch.setenv(var, value)
    bucket = own_seaweed.create_bucket(f"frozen-{uuid.uuid4().hex[:10]}")
    url = f"s3://{bucket}/reg"
    big = os.urandom(24 << 20)
    commit_files(open_registry(url).registry, tmp_path, "ds", {"big.bin": big, "s.txt": b"s"})
    with mounted(tmp_path / "mnt", registry=url) as m:
        v0 = m.path / "acme" / "proj" / "ds:v0"
        assert (v0 / "s.txt").read_bytes() == b"s"  # the version is loaded
        os.kill(own_seaweed.proc.pid, signal.SIGSTOP)
        try:
            t = time.monotonic()
            cat = subprocess.run(["cat", str(v0 / "big.bin")], capture_output=True, timeout=120)
            took = time.monotonic() - t
        finally:
            os.kill(own_seaweed.proc.pid, signal.SIGCONT)
        print(f"\ncold read behind a frozen server: {took:.2f}s (deadline {BOUND}s)")
        assert cat.returncode != 0 and b"Input/output error" in cat.stderr
        assert took <= BOUND + 2.0, f"answered after {took:.1f}s, deadline {BOUND}s"
        assert (v0 / "big.bin").read_bytes() == big  # the same mount, once it is back
