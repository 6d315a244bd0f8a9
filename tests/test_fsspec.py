"""`artifact://` through fsspec: the data stack reads artifacts without a mount, on every backend.

pandas, pyarrow, HF `datasets` and universal_pathlib read through the file system registered by
the `fsspec.specs` entry point; listings come from the manifest, bytes from the shared blob cache.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import time

import fsspec
import pytest

import artifactfs as af
from artifactfs.fsspec import filesystem as fsspec_fs

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

BIG = 20 << 20  # above the cache's 16 MiB block threshold: read by 4 MiB block


@pytest.fixture(autouse=True)
def fresh_fsspec():
    """fsspec caches instances by storage options; each test has its own home and registry."""
    fsspec_fs.reset()
    yield
    fsspec_fs.reset()


def _table(n: int, offset: int = 0):
    return pa.table({"x": list(range(offset, offset + n)), "y": [f"r{i}" for i in range(n)]})


@pytest.fixture
def published(registry_url, tmp_path):
    """acme/proj/tables:v0 (alias best): a csv, two parquet parts, a 20 MiB blob, a file://
    reference; returns the expected bytes by path."""
    data = tmp_path / "data"
    (data / "parts").mkdir(parents=True)
    (data / "table.csv").write_text("x,y\n1,a\n2,b\n")
    pq.write_table(_table(3), data / "parts" / "part-0.parquet")
    pq.write_table(_table(2, offset=3), data / "parts" / "part-1.parquet")
    (data / "big.bin").write_bytes(os.urandom(BIG))
    outside = tmp_path / "outside.txt"
    outside.write_text("referenced bytes")
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("tables", "dataset")
        art.add_dir(str(data))
        art.add_reference(outside.as_uri(), name="ref.txt")
        run.log_artifact(art, aliases=["best"])
    files = {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    files["ref.txt"] = outside.read_bytes()
    return files


@pytest.fixture
def no_internet(monkeypatch):
    """Connections anywhere but loopback are recorded and refused."""
    attempts: list[object] = []
    real = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(address, tuple) and not (
            host.startswith("127.") or host in ("::1", "localhost")
        ):
            attempts.append(address)
            raise OSError(errno.ENETUNREACH, "test: no network")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_data_stack_reads_through_fsspec(published, tmp_path, monkeypatch, no_internet):
    base = "artifact://acme/proj/tables:best"
    df = pd.read_csv(f"{base}/table.csv")
    assert df.to_dict("list") == {"x": [1, 2], "y": ["a", "b"]}
    assert pd.read_parquet(f"{base}/parts/part-1.parquet")["x"].tolist() == [3, 4]

    import pyarrow.dataset as ds

    fs = fsspec.filesystem("artifact")
    dataset = ds.dataset("acme/proj/tables:best/parts", filesystem=fs, format="parquet")
    assert sorted(dataset.to_table()["x"].to_pylist()) == [0, 1, 2, 3, 4]

    # HF datasets, with a tmp cache and no way out to the network (no_internet records any
    # attempt). Offline mode (HF_HUB_OFFLINE=1) refuses every non-local URL unless streaming,
    # so the offline run streams and the ordinary (copying) run stays online-mode.
    import datasets

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for offline, streaming in ((True, True), (False, False)):
        for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
            monkeypatch.setenv(var, "1" if offline else "0")
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", offline)
        loaded = datasets.load_dataset(
            "parquet",
            data_files=f"{base}/parts/*.parquet",
            cache_dir=str(tmp_path / "hf-cache"),
            split="train",
            streaming=streaming,
        )
        assert sorted(row["x"] for row in loaded) == [0, 1, 2, 3, 4]

    from upath import UPath

    root = UPath(f"{base}/")
    assert type(root).__name__ == "ArtifactPath"  # ours, registered by entry point
    assert (root / "table.csv").read_text() == "x,y\n1,a\n2,b\n"
    assert sorted(p.name for p in root.iterdir()) == ["big.bin", "parts", "ref.txt", "table.csv"]
    assert sorted(p.name for p in (root / "parts").glob("*.parquet")) == [
        "part-0.parquet",
        "part-1.parquet",
    ]
    assert (root / "ref.txt").read_bytes() == published["ref.txt"]
    assert not (root / "missing.csv").exists()
    assert no_internet == []


def _count_calls(store, names=("get", "get_range", "head", "download_to", "list", "list_children")):
    calls: list[str] = []
    for name in names:
        real = getattr(store, name)

        def wrapped(*a, _real=real, _name=name, **kw):
            calls.append(_name)
            return _real(*a, **kw)

        setattr(store, name, wrapped)
    return calls


def test_listings_come_from_the_manifest(registry_url, tmp_path):
    """ls/info/find/glob of a version make no store call per file: after the version is
    resolved and its index loaded once, a walk of 300 files costs nothing."""
    data = tmp_path / "many"
    for i in range(300):
        p = data / f"d{i % 3}" / f"f{i:03d}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(str(i))
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("many", "dataset")
        art.add_dir(str(data))
        run.log_artifact(art)
    fs = fsspec.filesystem("artifact", metadata_ttl=600)
    calls = _count_calls(fs.resolver.store)
    base = "acme/proj/many:v0"
    assert len(fs.ls(base)) == 3
    assert len(calls) < 10, calls  # resolve the version, load its manifest: a fixed cost
    calls.clear()
    assert len(fs.find(base)) == 300
    assert len(fs.glob(f"{base}/d1/*.txt")) == 100
    assert len(fs.glob(f"{base}/**/f00*.txt")) == 10
    assert fs.info(f"{base}/d2/f299.txt")["size"] == 3
    assert fs.isdir(f"{base}/d0") and not fs.exists(f"{base}/d9")
    assert sorted(fs.find(base, withdirs=True))[:2] == [base, f"{base}/d0"]
    assert calls == []


def test_reads_share_the_blob_cache(published, tmp_path):
    """What a download fetched is not fetched again through fsspec, references included; a
    cold ranged read of a big entry fetches the blocks it touches, not the whole entry."""
    fs = fsspec.filesystem("artifact")
    base = "acme/proj/tables:v0"
    with fs.open(f"{base}/big.bin") as f:
        f.seek(BIG - 4096 - 10)
        assert f.read(100) == published["big.bin"][BIG - 4096 - 10 : BIG - 4096 + 90]
    fetched = fs.resolver.cache.stats().bytes_fetched
    assert 0 < fetched <= 2 * (4 << 20), fetched
    assert fs.cat_file(f"{base}/big.bin", 10, 20) == published["big.bin"][10:20]

    af.Api().artifact("acme/proj/tables:v0").download(str(tmp_path / "dl"))
    before = fs.resolver.cache.stats().bytes_fetched
    for rel, data in published.items():
        assert fs.cat(f"{base}/{rel}") == data, rel
        with fs.open(f"{base}/{rel}") as f:
            assert f.read() == data
    assert fs.resolver.cache.stats().bytes_fetched == before


def test_get_fetches_in_parallel(published, tmp_path):
    fs = fsspec.filesystem("artifact", max_workers=4)
    lock = threading.Lock()
    running, peak = [0], [0]
    store = fs.resolver.store

    def slowed(real):
        def slow(*a, **kw):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.2)
            try:
                return real(*a, **kw)
            finally:
                with lock:
                    running[0] -= 1

        return slow

    # Whole objects come by download_to, small ones of known size by one ranged read.
    for method in ("download_to", "get_range", "get_range_into"):
        if hasattr(store, method):
            setattr(store, method, slowed(getattr(store, method)))
    fs.get("acme/proj/tables:v0", str(tmp_path / "out"), recursive=True)
    out = tmp_path / "out"
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == published
    assert peak[0] > 1


def test_checksum_ukey_and_versions(published, tmp_path):
    fs = fsspec.filesystem("artifact")
    csv = "acme/proj/tables:best/table.csv"
    md5 = hashlib.md5(published["table.csv"]).hexdigest()
    assert fs.checksum(csv) == int(md5, 16)
    info = fs.info(csv)
    assert info["version"] == "v0" and info["md5"] == md5 and info["size"] == 12
    extra = tmp_path / "extra.txt"
    extra.write_text("new")
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("tables", "dataset")
        art.add_file(str(extra))
        art.add_reference(af.Api().artifact("acme/proj/tables:v0").get_path("table.csv"))
        run.log_artifact(art)
    fsspec_fs.reset()  # aliases are re-resolved after metadata_ttl; a new instance now
    fs = fsspec.filesystem("artifact")
    assert fs.info("acme/proj/tables:latest/table.csv")["version"] == "v1"
    assert fs.ukey("acme/proj/tables:v1/table.csv") == fs.ukey(csv)
    assert fs.ukey("acme/proj/tables:v1/extra.txt") != fs.ukey(csv)
    assert fs.checksum("acme/proj/tables:v0/ref.txt") != fs.checksum(csv)


def test_read_only(published):
    fs = fsspec.filesystem("artifact")
    path = "acme/proj/tables:v0/table.csv"
    for attempt in (
        lambda: fs.open(path, "wb"),
        lambda: fs.pipe_file(path, b"x"),
        lambda: fs.rm(path),
        lambda: fs.mkdir("acme/proj/tables:v0/new"),
        lambda: fs.touch("acme/proj/tables:v0/new.txt"),
        lambda: fs.mv(path, "acme/proj/tables:v0/moved.csv"),
    ):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS and "read-only" in str(e.value)
    assert fs.cat(path) == published["table.csv"]


def test_names_options_and_errors(published, tmp_path, monkeypatch):
    monkeypatch.setenv("ARTIFACTFS_PROJECT", "proj")
    fs = fsspec.filesystem("artifact")
    assert fs.cat("proj/tables:v0/table.csv") == published["table.csv"]  # default entity
    assert fs.cat("tables:best/table.csv") == published["table.csv"]  # default project too
    assert fs.ls("", detail=False) == ["acme"]
    assert fs.ls("acme/proj", detail=False) == [
        "acme/proj/tables:v0",
        "acme/proj/tables:best",
        "acme/proj/tables:latest",
    ]
    with pytest.raises(FileNotFoundError, match="v7"):
        fs.open("acme/proj/tables:v7/table.csv")
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        fs.open("acme/proj/tables:v0/nope.csv")
    with pytest.raises(FileNotFoundError, match="no such entity"):
        fs.ls("nobody")
    with pytest.raises(FileNotFoundError, match="name a version"):
        fs.ls("acme/proj/tables/table.csv")
    with pytest.raises(IsADirectoryError):
        fs.open("acme/proj/tables:v0/parts")

    clone = pickle.loads(pickle.dumps(fs))  # Dask and DataLoader workers get the fs pickled
    assert clone.cat("acme/proj/tables:v0/table.csv") == published["table.csv"]

    # storage options override the configuration (here: the environment's registry)
    registry = os.environ["ARTIFACTFS_REGISTRY"]
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(tmp_path / "empty-registry"))
    with fsspec.open("artifact://acme/proj/tables:v0/table.csv", registry=registry) as f:
        assert f.read() == published["table.csv"]
    assert fsspec.filesystem("artifact", skip_instance_cache=True).ls("", detail=False) == []


def test_registered_by_entry_point(isolated_home, tmp_path):
    """`fsspec.open("artifact://...")` works in a process that never imported artifactfs."""
    code = (
        "import fsspec\n"
        "cls = fsspec.get_filesystem_class('artifact')\n"
        "print(cls.__module__, fsspec.filesystem('artifact').ls(''))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "artifactfs.fsspec.filesystem"


def test_hf_datasets_over_many_files(registry_url, tmp_path, monkeypatch, no_internet):
    """HF `datasets` passes its own storage options (`hf`, ...) once a pattern matches 16 or
    more files; they are ignored, not refused. 20 parquet shards and 100 images (imagefolder)."""
    datasets = pytest.importorskip("datasets")
    image = pytest.importorskip("PIL.Image")
    data = tmp_path / "data"
    (data / "parts").mkdir(parents=True)
    for i in range(20):
        pq.write_table(_table(5, offset=5 * i), data / "parts" / f"part-{i:02d}.parquet")
    for label in ("cat", "dog"):
        (data / "images" / label).mkdir(parents=True)
        for i in range(50):
            color = (i * 5, 100 if label == "cat" else 200, 0)
            image.new("RGB", (4, 4), color).save(data / "images" / label / f"{i:02d}.png")
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("many", "dataset")
        art.add_dir(str(data))
        run.log_artifact(art)

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    base = "artifact://acme/proj/many:latest"
    shards = datasets.load_dataset(
        "parquet",
        data_files=f"{base}/parts/*.parquet",
        cache_dir=str(tmp_path / "hf-cache"),
        split="train",
    )
    assert sorted(row["x"] for row in shards) == list(range(100))
    images = datasets.load_dataset(
        "imagefolder",
        data_files=f"{base}/images/*/*.png",
        cache_dir=str(tmp_path / "hf-cache"),
        split="train",
    )
    assert len(images) == 100
    labels = images.features["label"].names
    assert sorted(labels) == ["cat", "dog"]
    counts = {name: 0 for name in labels}
    for row in images:
        counts[labels[row["label"]]] += 1
        assert row["image"].size == (4, 4)
    assert counts == {"cat": 50, "dog": 50}
    assert no_internet == []


def test_foreign_storage_options_are_ignored(published, caplog):
    """Options another library adds (HF's `hf`, `block_size`, ...) do not break `artifact://`;
    what is ignored is logged at debug level. A misspelt configuration key is still an error."""
    import logging

    with caplog.at_level(logging.DEBUG, logger="artifactfs.fsspec.filesystem"):
        fs = fsspec.filesystem("artifact", hf={"endpoint": "x"}, block_size=1 << 20)
    assert fs.cat("acme/proj/tables:best/table.csv") == b"x,y\n1,a\n2,b\n"
    assert "ignoring artifact:// storage options ['block_size', 'hf']" in caplog.text
    with pytest.raises(af.errors.ConfigError, match="did you mean 'registry'"):
        fsspec.filesystem("artifact", regsitry="/nowhere")
