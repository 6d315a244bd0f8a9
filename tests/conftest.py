"""Shared fixtures: an isolated home per test, and the registry backends to parametrize over.

Every test runs with its own XDG config/cache/data dirs, so nothing leaks between tests or from
the developer's machine. `registry_url` runs a test once per backend: the embedded local
directory and a real SeaweedFS S3 server (started once per session by tests/servers.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import uuid

import pytest

S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "ARTIFACTFS_S3_ENDPOINT_URL",
)


def pytest_report_header(config):
    """Free space where the tests write, said up front: a run on a nearly full disk fails in
    ways that look like bugs (a full blob cache, a commit's ENOSPC)."""
    free = shutil.disk_usage(tempfile.gettempdir()).free
    line = f"free disk under {tempfile.gettempdir()}: {free / 2**30:.1f} GiB"
    return line + ("  (under 2 GiB: expect failures)" if free < 2 << 30 else "")


@pytest.fixture(autouse=True)
def cwd_outlives_the_test():
    """Fail the test that leaves the process in another directory. A passing test's tmp_path
    is removed when it ends (pyproject.toml): a test left inside it would leave every later
    subprocess in a deleted directory (rsync then fails in getcwd)."""
    before = os.getcwd()
    yield
    try:
        after = os.getcwd()
    except FileNotFoundError:
        after = None
    if after != before:
        os.chdir(before)
        pytest.fail(f"this test left the process in {after} (chdir back)", pytrace=False)


@pytest.fixture(autouse=True)
def dev_null_stays_a_device():
    """Fail the test that turns /dev/null into a regular file.

    A write-to-a-path done by rename over /dev/null (root may) replaces the device with a file;
    every later `cmd </dev/null` then reads stale text (git's pack-objects reads it as revisions).
    The device is put back so the rest of the suite is not poisoned by one test.
    """
    yield
    if not stat.S_ISCHR(os.lstat("/dev/null").st_mode):
        os.unlink("/dev/null")
        os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod("/dev/null", 0o666)
        pytest.fail("this test replaced /dev/null with a regular file", pytrace=False)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_DATA_HOME", "data"),
    ):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(home / sub))
    for var in list(os.environ):
        if var.startswith("ARTIFACTFS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("ARTIFACTFS_ENTITY", "acme")
    return home


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A real S3-compatible server on 127.0.0.1 for the whole session."""
    servers = pytest.importorskip("servers")
    try:
        server = servers.SeaweedFS.start(tmp_path_factory.mktemp("seaweed"), in_memory=True)
    except servers.ServerUnavailable as e:
        pytest.skip(f"SeaweedFS unavailable: {e}")
    yield server
    server.stop()


@pytest.fixture
def s3_env(seaweed, monkeypatch):
    """Point boto3's standard credential chain and our endpoint at the test server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ARTIFACTFS_S3_ENDPOINT_URL", seaweed.endpoint_url)
    return seaweed


@pytest.fixture(params=["local", "s3"])
def registry_url(request, tmp_path, monkeypatch):
    """A fresh, empty registry on each backend; also exported as ARTIFACTFS_REGISTRY."""
    if request.param == "local":
        url = str(tmp_path / "registry")
    else:
        server = request.getfixturevalue("s3_env")
        bucket = f"reg-{uuid.uuid4().hex[:12]}"
        server.create_bucket(bucket)
        url = f"s3://{bucket}/artifacts"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    return url


@pytest.fixture(params=[False, True], ids=["page-cache", "write-cache"])
def write_cache_mode(request):
    """Run a draft test on both connection modes: the default (the kernel keeps pages, every
    write(2) reaches the mount) and `--write-cache` (small writes batched in the kernel)."""
    mountutil = pytest.importorskip("mountutil")
    mountutil.MOUNT_DEFAULTS["write_cache"] = request.param
    yield request.param
    mountutil.MOUNT_DEFAULTS.pop("write_cache", None)


class RecordedBars:
    """A stand-in for `artifactfs.progress.progress_bar` that still draws, and records each bar
    it was asked for as (description, total, [every advance])."""

    def __init__(self) -> None:
        self.bars: list[tuple[str, int | None, list[int]]] = []

    @contextlib.contextmanager
    def __call__(self, total, desc, unit="B"):
        from artifactfs import progress

        steps: list[int] = []
        self.bars.append((desc, total, steps))
        with progress.progress_bar(total, desc, unit) as advance:
            yield lambda n: (steps.append(n), advance(n))


@pytest.fixture
def recorded_bars():
    """Set it in place of a command module's `progress_bar`; `.bars` says what was drawn."""
    return RecordedBars()
