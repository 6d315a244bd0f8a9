"""Issue 14 item 10 (gc half): `artifactfs gc` removes what nothing references, never what a
commit in flight may still use.

Garbage of every kind (a deleted version's blobs and manifest, a crashed commit's uploads, an
unfinished upload) is made and aged past a short grace period; then writer processes commit
while gc runs over and over, and some commits reuse garbage
content (the dangerous case: gc may be removing exactly that object). Afterwards every committed
version reads back in full, the garbage nobody reused is gone and the reused content is kept.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mountutil import commit_files, open_registry

from artifactfs.errors import PreconditionFailedError, ReadOnlyBackendError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.download import download_manifest, verify_dir
from artifactfs.resolver.gc import GarbageCollector
from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_bytes
from artifactfs.resolver.registry import Registry
from artifactfs.resolver.resolver import Resolver

pytestmark = pytest.mark.slow

GRACE = 4.0
WRITERS = 2
REUSED = {"reused-deleted.bin": b"unique to the deleted v0 " * 40, "reused-crashed.bin": b"c" * 999}
UNREUSED = {"gone-deleted.bin": b"also unique to v0 " * 50, "gone-crashed.bin": b"g" * 777}


def _blob(data: bytes) -> str:
    return keys.blob_key(hashlib.md5(data).hexdigest())


def _gc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artifactfs", "gc", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _writer(env: dict[str, str], workdir: str, i: int, until: float) -> None:
    """Commit until `until` (time.time()), each commit a new file plus reused garbage content."""
    os.environ.update(env)
    res = open_registry(env["ARTIFACTFS_REGISTRY"])
    j = 0
    while time.time() < until or j == 0:
        files = {f"new-{i}-{j}.bin": os.urandom(2000) + uuid.uuid4().bytes}
        name, data = list(REUSED.items())[(i + j) % len(REUSED)]
        files[name] = data
        commit_files(res.registry, Path(workdir), f"busy{i}", files)
        j += 1
        time.sleep(0.1)
    res.close()


def _make_garbage(res: Resolver, tmp: Path, url: str) -> None:
    """A deleted version's own content, a crashed commit's uploads, an unfinished upload."""
    reg, store = res.registry, res.store
    own = {k: v for k, v in {**REUSED, **UNREUSED}.items() if "deleted" in k}
    v0 = commit_files(reg, tmp, "old", {"shared.bin": b"shared", **own})
    commit_files(reg, tmp, "old", {"shared.bin": b"shared", "v1.bin": b"v1"})
    reg.delete_version(reg.version("acme", "proj", "old", v0.version))
    crashed = []
    for name, data in {**REUSED, **UNREUSED}.items():
        if "crashed" in name:
            path = tmp / name
            path.write_bytes(data)
            crashed.append(
                ManifestEntry(name, md5_b64_of_bytes(data), len(data), local_path=str(path))
            )
    reg.upload_entries(crashed)
    store.put(keys.manifest_key("0" * 32), Manifest(crashed).to_bytes())
    if url.startswith("s3://"):
        store.client.create_multipart_upload(Bucket=store.bucket, Key=store._key("blobs/partial"))
    else:
        (Path(url) / ".tmp" / "tmp-killed-writer").write_bytes(b"half")


def _read_back(url: str, tmp: Path, names: list[str]) -> tuple[int, int]:
    """Download every version of `names` into a fresh cache and verify it: (readable, total)."""
    check = Resolver.open(registry=url, ttl=0, cache_dir=tmp / f"fresh-{uuid.uuid4().hex[:6]}")
    versions = [r for name in names for r in check.registry.versions("acme", "proj", name)]
    readable = 0
    for record in versions:
        manifest = check.registry.manifest(record)
        root = tmp / "check" / f"{record.name}-{record.version}-{uuid.uuid4().hex[:6]}"
        download_manifest(check, manifest, root)  # every blob fetched and verified
        assert verify_dir(manifest, root) == len(manifest)
        readable += 1
    check.close()
    return readable, len(versions)


def test_gc_during_commits_keeps_every_version_readable(registry_url, tmp_path, monkeypatch):
    """Writers commit for 2.5 grace periods while gc runs without pause: the garbage they
    reuse turns old (and is refreshed) during the run, the rest turns old and is removed."""
    monkeypatch.setenv("ARTIFACTFS_GC_GRACE", str(GRACE))
    monkeypatch.setenv("ARTIFACTFS_TIMEOUT", "1")
    res = open_registry(registry_url)
    store = res.store
    _make_garbage(res, tmp_path, registry_url)
    assert _gc().stdout.startswith("gc: removed 0 "), "nothing is old enough yet"

    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "ARTIFACTFS_", "XDG_"))}
    until = time.time() + 2.5 * GRACE
    ctx = mp.get_context("spawn")
    writers = [
        ctx.Process(target=_writer, args=(env, str(tmp_path), i, until)) for i in range(WRITERS)
    ]
    for w in writers:
        w.start()
    runs, removed = 0, 0
    collector = GarbageCollector(res.registry, GRACE)  # in this process, so it runs many times
    while any(w.is_alive() for w in writers) or runs == 0:
        removed += collector.run().removed
        runs += 1
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0] * WRITERS

    readable, total = _read_back(registry_url, tmp_path, [f"busy{i}" for i in range(WRITERS)])
    commits = total
    readable_old, total_old = _read_back(registry_url, tmp_path, ["old"])
    print(
        f"\n{readable + readable_old}/{total + total_old} versions readable after {runs} gc "
        f"runs during {commits} commits ({removed} objects removed meanwhile)"
    )
    assert readable == total >= 2 * WRITERS and readable_old == total_old == 1

    time.sleep(GRACE + 1.2)  # what the writers did not reuse is old by now: a last run takes it
    last = _gc()
    assert last.returncode == 0, last.stderr
    for name, data in REUSED.items():
        assert store.head(_blob(data)) is not None, f"{name} is referenced again"
    for name, data in UNREUSED.items():
        assert store.head(_blob(data)) is None, f"{name} is garbage"
    assert store.head(keys.manifest_key("0" * 32)) is None
    assert store.head(_blob(b"shared")) is not None and store.head(_blob(b"v1")) is not None
    assert list(store.stale_uploads(0)) == []
    assert _gc("--dry-run").stdout.startswith("gc: would remove 0 ")
    res.close()


class _Interleave:
    """A store that runs `hook` at one chosen moment of a commit, to force the interleavings a
    concurrent gc could produce: after the commit found content it will reuse (`reuse`), or
    right after it rewrote that content (`refresh`)."""

    def __init__(self, inner: Store, key: str, moment: str, hook) -> None:
        self._inner, self._key, self._moment, self._hook = inner, key, moment, hook
        self.fired = 0

    def _fire(self) -> None:
        if not self.fired:  # once: the race happens once, the repair must then hold
            self.fired += 1
            self._hook()

    def put_file(self, key: str, *args, if_absent: bool = False, **kwargs) -> str:
        try:
            etag = self._inner.put_file(key, *args, if_absent=if_absent, **kwargs)
        except PreconditionFailedError:
            if key == self._key and if_absent and self._moment == "reuse":
                self._fire()
            raise
        if key == self._key and not if_absent and self._moment == "refresh":
            self._fire()
        return etag

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


@pytest.mark.parametrize("moment", ["reuse", "refresh"])
def test_gc_at_the_worst_moment_of_a_commit(moment, tmp_path):
    """Deterministic versions of the races: gc removes an old unreferenced blob just after a
    commit decided to reuse it (the commit then writes it again), or just after the commit
    refreshed it (the check after the commit point writes it again)."""
    url = str(tmp_path / "registry")
    res = open_registry(url)
    reg = res.registry
    gone = commit_files(reg, tmp_path, "ds", {"x.bin": b"old content " * 100})
    reg.delete_version(gone)
    blob = _blob(b"old content " * 100)
    two_days_ago = time.time() - 2 * 86400  # older than the default 1-day grace period
    for key in (blob, keys.version_key("acme", "proj", "ds", 0)):
        os.utime(Path(url) / key, (two_days_ago, two_days_ago))
    inner = reg.store

    def collect() -> None:
        if moment == "reuse":  # a whole gc run: it sees the blob old and unreferenced
            assert GarbageCollector(Registry(inner), 86400.0).run().removed >= 1
        else:  # the removal a gc issued after its last look at the blob
            inner.delete(blob)

    racing = _Interleave(inner, blob, moment, collect)
    reg.store = racing  # type: ignore[assignment]
    record = commit_files(reg, tmp_path, "ds", {"x.bin": b"old content " * 100, "y": b"y"})
    reg.store = inner
    assert racing.fired == 1
    assert inner.head(blob) is not None, "the commit's content is in the store"
    assert _read_back(url, tmp_path, ["ds"]) == (1, 1) and record.version == 1
    res.close()


def test_gc_refuses_read_only_and_short_grace(tmp_path, monkeypatch):
    out = _gc("--grace", "5")  # shorter than the default 1-day gc_grace
    assert out.returncode == 1 and "shorter than the configured gc_grace" in out.stderr
    monkeypatch.setenv("ARTIFACTFS_GC_GRACE", "10")
    out = _gc()  # 10 s < 4 x the 30 s request deadline
    assert out.returncode == 1 and "too short" in out.stderr
    from artifactfs.resolver.backends.http import HttpStore

    with pytest.raises(ReadOnlyBackendError):
        GarbageCollector(Registry(HttpStore("http://127.0.0.1:9/")), 100).run()
