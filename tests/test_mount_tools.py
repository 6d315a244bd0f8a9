"""The tools people use, on a real mount of the embedded registry (one mount for the module)."""

from __future__ import annotations

import errno
import filecmp
import hashlib
import json
import mmap
import multiprocessing as mp
import os
import random
import shutil
import subprocess

import pytest
from mountutil import commit_files, mounted, open_registry, wait_until

pytestmark = pytest.mark.fuse

rng = random.Random(7)
BIG = rng.randbytes(3 << 20)
SMALL = {f"train/{i // 50:02d}/s{i:03d}.bin": rng.randbytes(4096 + i) for i in range(200)}
V0 = {"readme.md": b"# v0\n", "data/big.bin": BIG, "data/empty": b""}
V1 = {"readme.md": b"# v1\n", "data/big.bin": BIG, "data/nested/deep/x.txt": b"x" * 10, **SMALL}


@pytest.fixture(scope="module", params=[False, True], ids=["page-cache", "write-cache"])
def world(tmp_path_factory, request):
    base = tmp_path_factory.mktemp("tools")
    reg_url = str(base / "registry")
    res = open_registry(reg_url, cache_dir=base / "seed-cache")
    commit_files(
        res.registry, base, "mnist", V0, aliases=("best",), metadata={"k": 1}, description="first"
    )
    commit_files(res.registry, base, "mnist", V1)
    commit_files(res.registry, base, "model", {"w.pt": b"weights"}, type_="model")
    args = {"write_cache": request.param}
    with mounted(base / "mnt", registry=reg_url, home=base / "home", extra_args=args) as m:
        yield m


@pytest.fixture
def root(world):
    return world.path / "acme" / "proj"


def sh(cmd: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60, **kw)


def test_ls_shows_versions_aliases_and_files(world, root):
    assert sorted(os.listdir(world.path)) == [".artifactfs", "acme"]
    names = os.listdir(root)
    assert sorted(n for n in names if ":" in n) == sorted(
        ["mnist:v0", "mnist:v1", "mnist:latest", "mnist:best", "model:v0", "model:latest"]
    )
    # drafts (DESIGN §2): one per collection when the drafts side is installed
    assert {n for n in names if ":" not in n} <= {"mnist", "model"}
    assert os.readlink(root / "mnist:latest") == "mnist:v1"
    assert os.readlink(root / "mnist:best") == "mnist:v0"
    assert sorted(os.listdir(root / "mnist:latest")) == ["data", "readme.md", "train"]
    out = sh(f"ls -lR {root}/mnist:v0")
    assert out.returncode == 0, out.stderr
    assert "big.bin" in out.stdout and str(len(BIG)) in out.stdout and "empty" in out.stdout


def test_find_stat_du(root):
    out = sh(f"find {root}/mnist:v1 -type f | sort")
    files = [p.split("mnist:v1/", 1)[1] for p in out.stdout.split()]
    assert files == sorted(V1)
    st = os.stat(root / "mnist:v1" / "data" / "big.bin")
    assert st.st_size == len(BIG) and st.st_mode & 0o777 == 0o444
    assert os.stat(root / "mnist:v1").st_mode & 0o222 == 0
    du = sh(f"du -sb {root}/mnist:v1")
    assert int(du.stdout.split()[0]) >= sum(map(len, V1.values()))
    assert sh(f"stat {root}/mnist:v0/data/empty").returncode == 0


def test_cat_cmp_cp_rsync(root, tmp_path):
    assert sh(f"cat {root}/mnist:latest/readme.md").stdout == "# v1\n"
    (tmp_path / "big.bin").write_bytes(BIG)
    assert sh(f"cmp {root}/mnist:v0/data/big.bin {tmp_path}/big.bin").returncode == 0
    assert sh(f"cp -r {root}/mnist:v1 {tmp_path}/copy").returncode == 0
    cmp = filecmp.dircmp(tmp_path / "copy", root / "mnist:v1")
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (apt install rsync)")
    out = sh(f"rsync -a {root}/mnist:v1/ {tmp_path}/rs/")
    assert out.returncode == 0, out.stderr
    for rel, data in V1.items():
        assert (tmp_path / "rs" / rel).read_bytes() == data


def test_python_walk_open_seek_mmap(root):
    seen = {}
    for d, _dirs, files in os.walk(root / "mnist:v1"):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root / "mnist:v1")
            seen[rel] = os.path.getsize(os.path.join(d, f))
    assert seen == {k: len(v) for k, v in V1.items()}
    with open(root / "mnist:v1/data/big.bin", "rb") as f:
        f.seek(1_000_003)
        assert f.read(777) == BIG[1_000_003 : 1_000_003 + 777]
        f.seek(-10, os.SEEK_END)
        assert f.read() == BIG[-10:]
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            assert m[2_000_000:2_000_100] == BIG[2_000_000:2_000_100]
            assert len(m) == len(BIG)


def _digest(path: str) -> tuple[str, str]:
    with open(path, "rb") as f:
        return path, hashlib.md5(f.read()).hexdigest()


def test_multiprocessing_readers_like_a_dataloader(root):
    paths = [str(root / "mnist:v1" / rel) for rel in SMALL]
    with mp.get_context("spawn").Pool(4) as pool:
        got = dict(pool.map(_digest, paths, chunksize=8))
    assert got == {str(root / "mnist:v1" / r): hashlib.md5(d).hexdigest() for r, d in SMALL.items()}


def test_torch_dataloader_with_workers(root):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, Dataset

    class Files(Dataset):
        def __init__(self, paths):
            self.paths = paths

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            with open(self.paths[i], "rb") as f:
                return torch.tensor(len(f.read()))

    paths = [str(root / "mnist:v1" / rel) for rel in SMALL]
    total = sum(int(b.sum()) for b in DataLoader(Files(paths), batch_size=16, num_workers=2))
    assert total == sum(map(len, SMALL.values()))


def _errno_of(fn) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def test_errnos(world, root):
    v = root / "mnist:v1"
    assert _errno_of(lambda: os.stat(root / "nope:v0")) == errno.ENOENT
    assert _errno_of(lambda: os.stat(root / "mnist:v9")) == errno.ENOENT
    assert _errno_of(lambda: os.stat(root / "mnist:nosuchalias")) == errno.ENOENT
    assert _errno_of(lambda: os.stat(v / "missing.txt")) == errno.ENOENT
    assert _errno_of(lambda: os.stat(world.path / "nobody")) == errno.ENOENT

    # The kernel opens files without asking the mount (no_open, docs/SEMANTICS.md): opening a
    # version file for appending succeeds for root (other users get EACCES from its mode); the
    # kernel caches the write (write-back) and its write-back fails, so close reports it
    # (EROFS, or EIO as the kernel maps write-back errors); a truncating open fails at once.
    # The version's bytes never change, and the refused pages are dropped for readers.
    def append(path):
        with open(path, "ab") as f:
            f.write(b"x")

    assert _errno_of(lambda: append(v / "readme.md")) in (errno.EROFS, errno.EACCES, errno.EIO)
    assert _errno_of(lambda: open(v / "readme.md", "wb")) in (errno.EROFS, errno.EACCES)  # noqa: SIM115
    assert wait_until(lambda: (v / "readme.md").read_bytes() == V1["readme.md"], 5)
    assert _errno_of(lambda: open(v / "new.txt", "wb")) in (errno.EROFS, errno.EACCES)  # noqa: SIM115
    assert _errno_of(lambda: os.mkdir(v / "d")) in (errno.EROFS, errno.EACCES)
    assert _errno_of(lambda: os.unlink(v / "readme.md")) in (errno.EROFS, errno.EACCES)
    assert _errno_of(lambda: os.utime(v / "readme.md")) in (errno.EROFS, errno.EPERM)
    assert _errno_of(lambda: os.setxattr(v, "user.artifact.type", b"x")) in (
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
    )
    # no traceback reached the mount's output: errors are logged one line each
    assert "Traceback" not in world.log()


def test_xattrs_on_versions_and_files(root):
    v0 = root / "mnist:v0"
    names = set(os.listxattr(v0))
    for key in ("type", "digest", "size", "aliases", "description", "metadata", "created_at"):
        assert f"user.artifact.{key}" in names
    assert os.getxattr(v0, "user.artifact.type") == b"dataset"
    assert json.loads(os.getxattr(v0, "user.artifact.aliases")) == ["best"]
    assert json.loads(os.getxattr(v0, "user.artifact.metadata")) == {"k": 1}
    assert os.getxattr(v0, "user.artifact.description") == b"first"
    assert os.getxattr(root / "model:v0", "user.artifact.type") == b"model"
    digest = os.getxattr(v0 / "readme.md", "user.artifact.digest").decode()
    import base64

    assert base64.b64decode(digest) == hashlib.md5(V0["readme.md"]).digest()
    assert _errno_of(lambda: os.getxattr(v0, "user.artifact.nope")) == errno.ENODATA


def test_stats_control_dir(world, root):
    (root / "model:v0" / "w.pt").read_bytes()
    stats = world.stats()
    assert stats["mount"]["reads"] >= 1 and stats["mount"]["bytes_read"] >= 7
    assert "drafts" in stats
    if "cache" in stats:
        assert stats["cache"]["bytes_fetched"] >= 7
    info = json.loads((world.path / ".artifactfs" / "mount.json").read_text())
    assert info["pid"] > 0 and info["mountpoint"] == str(world.path)
