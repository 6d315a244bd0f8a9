"""`file://` references are read with the rights of the user who asks (issue 20, item 1).

A root mount with `--allow-other` must not hand a root-only file to `nobody` (not even after
root's read filled the page cache), `download()` must not widen a file's permissions or read
what its caller may not, and a wrong declared size must not reveal the real one. Reads as
`nobody` happen in a forked child that drops to uid/gid 65534 (no exec, so the interpreter's
location does not matter); the files live in a world-searchable directory under /tmp.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mountutil import mounted

import artifactfs as af
from artifactfs.errors import DigestMismatchError

NOBODY = 65534


def as_nobody(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a forked child as uid/gid 65534 with no groups; its JSON-able result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = fn()
        except BaseException as e:
            out = {"raised": type(e).__name__, "message": str(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def read_result(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return {"sha256": hashlib.sha256(f.read()).hexdigest()}
    except OSError as e:
        return {"errno": e.errno}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every user can search (pytest's tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="afs-refaccess-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _file(path: Path, data: bytes, mode: int) -> bytes:
    path.write_bytes(data)
    path.chmod(mode)
    return data


@pytest.mark.fuse
def test_the_mount_serves_a_reference_only_to_users_who_may_read_the_file(
    public_dir, tmp_path, monkeypatch
):
    url = str(tmp_path / "registry")
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    secret = _file(public_dir / "secret.bin", os.urandom(658), 0o600)
    public = _file(public_dir / "public.bin", os.urandom(4000), 0o644)
    later = _file(public_dir / "later.bin", os.urandom(3000), 0o644)
    (public_dir / "private").mkdir(mode=0o700)
    inner = _file(public_dir / "private" / "inner.bin", os.urandom(1000), 0o644)
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("refs", type="dataset")
        for name in ("secret.bin", "public.bin", "later.bin", "private/inner.bin"):
            art.add_reference(f"file://{public_dir}/{name}", name=name, checksum=False)
        run.log_artifact(art)

    with mounted(public_dir / "mnt", registry=url, extra_args={"allow_other": True}) as m:
        d = m.path / "acme/proj/refs:v0"
        st = os.stat(d / "secret.bin")
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o400)  # the file's own owner
        assert stat.S_IMODE(os.stat(d / "public.bin").st_mode) == 0o444
        assert stat.S_IMODE(os.stat(d / "private/inner.bin").st_mode) == 0o400  # dir is 0700

        assert as_nobody(lambda: read_result(d / "secret.bin")) == {"errno": errno.EACCES}
        assert (d / "secret.bin").read_bytes() == secret  # root may: now in the page cache
        assert as_nobody(lambda: read_result(d / "secret.bin")) == {"errno": errno.EACCES}
        assert as_nobody(lambda: read_result(d / "private/inner.bin")) == {"errno": errno.EACCES}
        assert (d / "private/inner.bin").read_bytes() == inner
        assert as_nobody(lambda: read_result(d / "public.bin")) == {"sha256": sha(public)}

        # The kernel keeps the mode it was shown (attr timeout); a read it forwards after the
        # file became private is refused by the daemon itself, with a log line.
        assert as_nobody(lambda: os.stat(d / "later.bin").st_mode & 0o777) == 0o444
        (public_dir / "later.bin").chmod(0o600)
        assert as_nobody(lambda: read_result(d / "later.bin")) == {"errno": errno.EACCES}
        assert (d / "later.bin").read_bytes() == later
        assert "refused" in m.log() and "later.bin" in m.log()

        # the draft of the collection shows the same entries (copy-on-write): same rule
        draft = m.path / "acme/proj/refs"
        assert as_nobody(lambda: read_result(draft / "secret.bin")) == {"errno": errno.EACCES}
        assert as_nobody(lambda: read_result(draft / "public.bin")) == {"sha256": sha(public)}
        assert (draft / "secret.bin").read_bytes() == secret


def test_download_keeps_a_private_files_mode_and_reads_as_the_caller(
    public_dir, tmp_path, monkeypatch
):
    registry = public_dir / "registry"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(registry))
    secret = _file(public_dir / "secret.bin", os.urandom(658), 0o600)
    _file(public_dir / "public.bin", os.urandom(700), 0o644)
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("refs", type="dataset")
        art.add_reference(f"file://{public_dir}/secret.bin", name="secret.bin", checksum=False)
        art.add_reference(f"file://{public_dir}/public.bin", name="public.bin", checksum=False)
        run.log_artifact(art)
    # root reading for itself may: the copy stays as private as the file
    out = Path(af.Api().artifact("acme/proj/refs:v0").download(root=str(tmp_path / "out")))
    assert (out / "secret.bin").read_bytes() == secret
    assert stat.S_IMODE((out / "secret.bin").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "public.bin").stat().st_mode) == 0o644

    for dirpath, _, files in os.walk(registry):  # the local registry writes private files
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    home = public_dir / "nobody"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)

    def download_as_nobody() -> dict[str, Any]:
        for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            os.environ[var] = str(home / var.lower())
        os.environ["HOME"] = str(home)
        a = af.Api().artifact("acme/proj/refs:v0")
        try:
            a.download(root=str(home / "out"))
        except Exception as e:
            return {"raised": type(e).__name__, "message": str(e)}
        return {"files": sorted(os.listdir(home / "out"))}

    got = as_nobody(download_as_nobody)
    assert got["raised"] == "ReferenceAccessError", got
    assert "secret.bin" in got["message"] and "658" not in got["message"]
    assert not (home / "out" / "secret.bin").exists()


def test_a_wrong_declared_size_is_refused_without_telling_the_real_one(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(tmp_path / "registry"))
    target = tmp_path / "labels.bin"
    target.write_bytes(os.urandom(1000))
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("refs", type="dataset")
        art.add_reference(f"file://{target}", name="labels.bin", checksum=False)
        run.log_artifact(art)
    target.write_bytes(os.urandom(123457))  # not the size the manifest declares
    with pytest.raises(DigestMismatchError) as e:
        af.Api().artifact("acme/proj/refs:v0").download(root=str(tmp_path / "out"))
    assert "labels.bin" in str(e.value) and "1000" in str(e.value)
    assert "123457" not in str(e.value) and "123457" not in caplog.text
