"""The C fast path (fusefs/fastpath.py, issue 23): a cold re-read is answered without Python,
and never with a wrong byte.

Cold means the kernel forgot the mount's pages and dentries (`drop_caches`, root), so every
file costs a LOOKUP and a READ again while its blob is in our cache: what each epoch over a
dataset bigger than RAM costs. Counts come from the mount's stats.json (`upcalls` reached
Python; `fast_path` was answered in C), so these are counts, never times.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest
from mountutil import commit_files, mounted, open_registry
from test_reference_access import as_nobody, public_dir, read_result, sha  # noqa: F401

import artifactfs as af

pytestmark = pytest.mark.fuse

FILES = {f"shard{i % 3}/sample{i:03d}.bin": os.urandom(2000 + 37 * i) for i in range(30)}


def drop_caches() -> None:
    """The kernel forgets pages, dentries and inodes (the mount's too): the next walk and read
    of every file reach the daemon."""
    if os.geteuid() != 0:
        pytest.skip("dropping the kernel's caches needs root")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def counts(m) -> tuple[dict[str, int], dict[str, int]]:
    mount = m.stats()["mount"]
    return dict(mount["upcalls"]), dict(mount.get("fast_path", {}))


def read_all(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in FILES}


def cached_object(cache: Path, data: bytes) -> Path:
    """The blob cache's whole-object file holding `data` (found by its MD5 in the path)."""
    md5 = hashlib.md5(data).hexdigest()
    found = [p for p in (cache / "objects").rglob("*") if p.is_file() and p.name == md5[2:]]
    assert len(found) == 1, found
    return found[0]


def test_a_cold_re_read_is_answered_in_c_with_the_same_bytes(tmp_path):
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", FILES)
    with mounted(tmp_path / "mnt", registry=url) as m:
        v = m.path / "acme/proj/ds:v0"
        assert read_all(v) == FILES  # fetched into the cache, by Python, which tells C
        drop_caches()
        assert read_all(v) == FILES
        py_before, fast_before = counts(m)
        assert fast_before["reads"] == len(FILES)  # the first cold pass already
        assert fast_before["paths"] >= len(FILES)
        drop_caches()
        assert read_all(v) == FILES
        py_after, fast_after = counts(m)
        # every LOOKUP and READ of the files was answered in C; none reached Python
        assert fast_after["lookups"] - fast_before["lookups"] >= len(FILES)
        assert fast_after["reads"] - fast_before["reads"] == len(FILES)
        # (one READ reaches Python: the stats file read by counts() itself)
        assert py_after.get("read_buf", 0) - py_before.get("read_buf", 0) <= 1
        total = m.stats()["mount"]
        assert total["reads"] >= 3 * len(FILES)  # C's reads count as the mount's reads


def test_a_changed_or_evicted_object_is_never_served_from_c(tmp_path):
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", FILES)
    cache = tmp_path / "home" / "cache" / "artifactfs"
    with mounted(tmp_path / "mnt", registry=url) as m:
        v = m.path / "acme/proj/ds:v0"
        assert read_all(v) == FILES
        changed, evicted = "shard0/sample000.bin", "shard1/sample001.bin"
        blob = cached_object(cache, FILES[changed])
        blob.chmod(0o644)
        with open(blob, "r+b") as f:  # same size, other bytes: only its ctime tells
            f.write(b"\0" * 16)
        cached_object(cache, FILES[evicted]).unlink()
        drop_caches()
        _, before = counts(m)
        assert read_all(v) == FILES  # both fetched again by Python: never the changed bytes
        _, after = counts(m)
        assert after["reads"] - before["reads"] == len(FILES) - 2
        assert after["fallbacks"] > before["fallbacks"]
        drop_caches()
        assert read_all(v) == FILES  # and from C again, now that Python re-verified them
        _, again = counts(m)
        assert again["reads"] - after["reads"] == len(FILES)


def test_without_the_fast_path_every_request_is_answered_in_python(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTIFACTFS_NO_FAST_PATH", "1")
    url = str(tmp_path / "registry")
    commit_files(open_registry(url).registry, tmp_path, "ds", FILES)
    with mounted(tmp_path / "mnt", registry=url) as m:
        v = m.path / "acme/proj/ds:v0"
        assert read_all(v) == FILES
        drop_caches()
        assert read_all(v) == FILES
        py, fast = counts(m)
        assert fast == {} and py["read_buf"] >= 2 * len(FILES)
        assert "C fast path off: ARTIFACTFS_NO_FAST_PATH is set" in m.log()


def test_a_local_reference_is_checked_for_its_caller_after_a_cold_drop(
    public_dir,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """A `file://` reference is never answered from C: the caller of every read is checked
    (refgate.py), even after root's reads made every other path C's."""
    url = str(tmp_path / "registry")
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    secret = public_dir / "secret.bin"
    secret.write_bytes(os.urandom(700))
    secret.chmod(0o600)
    public = public_dir / "public.bin"
    public.write_bytes(os.urandom(900))
    public.chmod(0o644)
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("refs", type="dataset")
        for p in (secret, public):
            art.add_reference(f"file://{p}", name=p.name, checksum=False)
        run.log_artifact(art)
    with mounted(public_dir / "mnt", registry=url, extra_args={"allow_other": True}) as m:
        d = m.path / "acme/proj/refs:v0"
        for _ in range(2):
            assert (d / "secret.bin").read_bytes() == secret.read_bytes()
            drop_caches()
        assert stat.S_IMODE(as_nobody(lambda: os.stat(d / "secret.bin").st_mode)) == 0o400
        assert as_nobody(lambda: read_result(d / "secret.bin")) == {"errno": errno.EACCES}
        assert as_nobody(lambda: read_result(d / "public.bin")) == {
            "sha256": sha(public.read_bytes())
        }
