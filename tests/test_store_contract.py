"""One contract for every registry backend: local directory, S3 (SeaweedFS), HTTP (nginx).

Each test asks the `backend` fixture for a store holding some objects. Local and S3 stores are
written directly; the HTTP store is read-only, so its objects are written to a local registry,
exported (resolver/export.py) and served by a real nginx. Write tests expect
ReadOnlyBackendError from HTTP. S3-only tests cover the conditional-write probe; timeout tests
point S3 and HTTP at a closed port and at a port that accepts but never answers.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from artifactfs.errors import (
    BackendError,
    ConditionalWritesUnsupportedError,
    DigestMismatchError,
    ObjectNotFoundError,
    PreconditionFailedError,
    ReadOnlyBackendError,
)
from artifactfs.resolver.backends import LocalStore, Store
from artifactfs.resolver.backends.http import HttpStore
from artifactfs.resolver.backends.s3 import S3Store
from artifactfs.resolver.export import export_registry
from artifactfs.settings import Config

servers = pytest.importorskip("servers")

BIG = 20 * (1 << 20) + 12345  # above the S3 multipart threshold (8 MiB), not a chunk multiple


@pytest.fixture(scope="session")
def nginx_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("www")


@pytest.fixture(scope="session")
def nginx(nginx_root):
    try:
        server = servers.Nginx.start(nginx_root)
    except servers.ServerUnavailable as e:
        pytest.skip(f"nginx unavailable: {e}")
    yield server
    server.stop()


@dataclass
class Backend:
    name: str
    make: Callable[[dict[str, bytes]], Store]

    @property
    def writable(self) -> bool:
        return self.name != "http"


@pytest.fixture(params=["local", "s3", "http"])
def backend(request, tmp_path) -> Iterator[Backend]:
    stores: list[Store] = []

    if request.param == "local":

        def make(objects: dict[str, bytes]) -> Store:
            store = LocalStore(tmp_path / f"reg-{uuid.uuid4().hex[:6]}")
            for k, v in objects.items():
                store.put(k, v)
            stores.append(store)
            return store

    elif request.param == "s3":
        server = request.getfixturevalue("s3_env")
        config = Config(s3_endpoint_url=server.endpoint_url, timeout=20, retries=3)

        def make(objects: dict[str, bytes]) -> Store:
            bucket = server.create_bucket(f"c-{uuid.uuid4().hex[:12]}")
            store = S3Store.from_url(f"s3://{bucket}/some/prefix", config)
            for k, v in objects.items():
                store.put(k, v)
            stores.append(store)
            return store

    else:
        web = request.getfixturevalue("nginx")
        root = request.getfixturevalue("nginx_root")

        def make(objects: dict[str, bytes]) -> Store:
            local = LocalStore(tmp_path / f"src-{uuid.uuid4().hex[:6]}")
            for k, v in objects.items():
                local.put(k, v)
            site = f"site-{uuid.uuid4().hex[:8]}"
            export_registry(local, root / site)
            store = HttpStore(f"{web.url}/{site}/", timeout=10, retries=2)
            stores.append(store)
            return store

    yield Backend(request.param, make)
    for s in stores:
        s.close()


BLOB = b"0123456789" * 100
BLOB_MD5 = hashlib.md5(BLOB).hexdigest()
BLOB_KEY = f"blobs/md5/{BLOB_MD5[:2]}/{BLOB_MD5[2:]}"
OBJECTS = {
    "registry/acme/p/coll/versions/v0.json": b'{"v": 0}',
    "registry/acme/p/coll/versions/v1.json": b'{"v": 1}',
    "registry/acme/p/coll/aliases/latest.json": b'{"version": 1}',
    "registry/acme/p/other/collection.json": b"{}",
    "registry/acme/q/x/collection.json": b"{}",
    BLOB_KEY: BLOB,
    "top.json": b"top",
}


# -- reads --------------------------------------------------------------------------------------
def test_get_and_head(backend):
    store = backend.make(OBJECTS)
    for key, value in OBJECTS.items():
        data, etag = store.get(key)
        assert data == value
        assert etag
        info = store.head(key)
        assert info is not None
        assert (info.key, info.size) == (key, len(value))
        assert info.etag
    assert store.head("registry/acme/p/nope.json") is None
    assert store.head("registry/acme/p") is None  # a "directory" is not an object
    with pytest.raises(ObjectNotFoundError):
        store.get("registry/acme/p/nope.json")


def test_get_range(backend):
    store = backend.make(OBJECTS)
    key, value = BLOB_KEY, BLOB
    assert store.get_range(key, 0, 10) == value[:10]
    assert store.get_range(key, 995, 10) == value[995:]  # short at the end
    assert store.get_range(key, 1000, 10) == b""  # at the end
    assert store.get_range(key, 5000, 10) == b""  # past the end
    assert store.get_range(key, 3, 0) == b""
    with pytest.raises(ObjectNotFoundError):
        store.get_range("blobs/md5/00/nope", 0, 10)


def test_range_into_writes_at_the_same_offsets(backend, tmp_path):
    """StoreObjectSource.range_into: S3 streams the body into the file (get_range_into),
    other stores go through get_range; same bytes at the same offsets either way, and the
    connection stays usable afterwards."""
    from artifactfs.resolver.resolver import StoreObjectSource

    data = os.urandom(3 * (1 << 20) + 5)
    store = backend.make({"blobs/big": data})
    src = StoreObjectSource(store, "blobs/big")
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT)
    try:
        for start, length in ((1 << 20, 2 * (1 << 20)), (0, 1 << 20), (3 * (1 << 20), 5)):
            assert src.range_into(start, length, fd) == length
        assert os.pread(fd, len(data) + 1, 0) == data
        assert src.range_into(len(data) - 5, 10, fd) == 5  # short at the end
    finally:
        os.close(fd)
    assert store.get_range("blobs/big", 0, 4) == data[:4]


def test_download_to_big_object(backend, tmp_path):
    data = os.urandom(BIG)
    store = backend.make({"blobs/big": data, "small": b"s"})
    seen: list[int] = []
    lock = threading.Lock()

    def progress(n: int) -> None:
        with lock:
            seen.append(n)

    with open(tmp_path / "out", "wb") as f:
        assert store.download_to("blobs/big", f, progress) == BIG
    assert (tmp_path / "out").read_bytes() == data
    assert sum(seen) == BIG
    buf = io.BytesIO()
    assert store.download_to("small", buf) == 1
    assert buf.getvalue() == b"s"
    with pytest.raises(ObjectNotFoundError):
        store.download_to("nope", io.BytesIO())
    assert store.get_range("blobs/big", BIG - 5, 100) == data[-5:]


def test_list_recursive(backend):
    store = backend.make(OBJECTS)
    assert sorted(store.list("")) == sorted(OBJECTS)
    assert sorted(store.list("registry/acme/p/")) == sorted(
        k for k in OBJECTS if k.startswith("registry/acme/p/")
    )
    # a prefix that ends inside a name component
    assert sorted(store.list("registry/acme/p/co")) == sorted(
        k for k in OBJECTS if k.startswith("registry/acme/p/co")
    )
    assert list(store.list("registry/nobody/")) == []


def test_list_children(backend):
    store = backend.make(OBJECTS)
    assert sorted(store.list_children("")) == ["blobs", "registry", "top.json"]
    assert sorted(store.list_children("registry/acme/")) == ["p", "q"]
    assert sorted(store.list_children("registry/acme/p/")) == ["coll", "other"]
    assert sorted(store.list_children("registry/acme/p/coll/")) == ["aliases", "versions"]
    assert sorted(store.list_children("registry/acme/p/coll/versions/")) == ["v0.json", "v1.json"]
    assert list(store.list_children("registry/nobody/")) == []


# -- writes -------------------------------------------------------------------------------------
def test_writes_refused_when_read_only(backend, tmp_path):
    if backend.writable:
        pytest.skip("writable backend")
    store = backend.make(OBJECTS)
    (tmp_path / "f").write_bytes(b"f")
    with pytest.raises(ReadOnlyBackendError):
        store.check_writable()
    for write in (
        lambda: store.put("a", b"x"),
        lambda: store.put_file("a", str(tmp_path / "f")),
        lambda: store.create("a", b"x"),
        lambda: store.swap("top.json", b"x", "etag"),
        lambda: store.swap("a", b"x", None),
        lambda: store.delete("top.json"),
    ):
        with pytest.raises(ReadOnlyBackendError):
            write()
    assert store.get("top.json")[0] == b"top"


def writable(backend: Backend) -> Store:
    if not backend.writable:
        pytest.skip("read-only backend")
    store = backend.make({})
    store.check_writable()
    return store


def test_put_delete(backend):
    store = writable(backend)
    etag = store.put("a/b/c.json", b"one")
    assert store.get("a/b/c.json") == (b"one", etag)
    etag2 = store.put("a/b/c.json", b"two")
    assert etag2 != etag
    assert store.get("a/b/c.json")[0] == b"two"
    store.delete("a/b/c.json")
    assert store.head("a/b/c.json") is None
    store.delete("a/b/c.json")  # absent: not an error


def test_create_only(backend):
    store = writable(backend)
    etag = store.create("r/v0.json", b"first")
    assert store.get("r/v0.json") == (b"first", etag)
    with pytest.raises(PreconditionFailedError):
        store.create("r/v0.json", b"second")
    assert store.get("r/v0.json")[0] == b"first"


def test_create_race_has_one_winner(backend):
    store = writable(backend)
    barrier = threading.Barrier(8)

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            store.create("r/race.json", f"writer {i}".encode())
            return True
        except PreconditionFailedError:
            return False

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count(True) == 1
    assert store.get("r/race.json")[0] == f"writer {results.index(True)}".encode()


def test_swap(backend):
    store = writable(backend)
    etag0 = store.swap("alias.json", b"0", None)
    with pytest.raises(PreconditionFailedError):
        store.swap("alias.json", b"x", None)  # None means "must not exist"
    etag1 = store.swap("alias.json", b"1", etag0)
    assert store.get("alias.json") == (b"1", etag1)
    with pytest.raises(PreconditionFailedError):
        store.swap("alias.json", b"stale", etag0)
    assert store.get("alias.json")[0] == b"1"
    with pytest.raises(PreconditionFailedError):
        store.swap("absent.json", b"x", etag1)
    assert store.head("absent.json") is None


def _swap_round(store: Store, tag: str, writers: int = 6) -> list[bool]:
    _, etag = store.get("counter.json")
    barrier = threading.Barrier(writers)

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            store.swap("counter.json", f"{tag}-{i}".encode(), etag)
            return True
        except PreconditionFailedError:
            return False

    with ThreadPoolExecutor(writers) as pool:
        return list(pool.map(attempt, range(writers)))


def test_swap_race_has_one_winner_per_round(backend):
    store = writable(backend)
    store.put("counter.json", b"0")
    for round_ in range(3):
        results = _swap_round(store, str(round_))
        assert results.count(True) == 1
        assert store.get("counter.json")[0] == f"{round_}-{results.index(True)}".encode()


def test_put_file_md5_guard(backend, tmp_path):
    store = writable(backend)
    for size in (0, 1000, BIG):
        path = tmp_path / f"f{size}"
        data = os.urandom(size)
        path.write_bytes(data)
        good = hashlib.md5(data).hexdigest()
        key = f"blobs/md5/{good[:2]}/{good[2:]}"
        with pytest.raises(DigestMismatchError):
            store.put_file(key, str(path), md5_hex=hashlib.md5(b"other").hexdigest())
        assert store.head(key) is None, "mismatched content must never be left under the key"
        seen: list[int] = []
        store.put_file(key, str(path), seen.append, md5_hex=good)
        assert store.get(key)[0] == data
        assert sum(seen) == size
    if backend.name == "s3":  # an aborted multipart upload leaves no parts behind
        assert not store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads")


def test_put_file_if_absent_keeps_what_is_there(backend, tmp_path):
    store = writable(backend)
    for size in (1000, BIG):  # one conditional PUT on S3 below the multipart threshold, HEAD above
        data = os.urandom(size)
        md5 = hashlib.md5(data).hexdigest()
        key = f"blobs/md5/{md5[:2]}/{md5[2:]}"
        path = tmp_path / f"g{size}"
        path.write_bytes(data)
        store.put_file(key, str(path), md5_hex=md5, if_absent=True)
        assert store.get(key)[0] == data
        path.write_bytes(b"x" * size)  # a second writer must not replace the stored content
        with pytest.raises(PreconditionFailedError):
            store.put_file(key, str(path), if_absent=True)
        assert store.get(key)[0] == data


def test_keys_are_validated(backend):
    store = backend.make({})
    for bad in ("/abs", "a//b"):
        with pytest.raises(ValueError):
            store.get(bad)


# -- S3 only: the conditional-write probe --------------------------------------------------------
def _s3_store_ignoring_conditions(server, bucket: str) -> tuple[S3Store, list[str]]:
    """A store whose requests lose their If-None-Match/If-Match headers before they are signed:
    exactly what a server that silently ignores conditional writes looks like to us."""
    client = server.client()
    requests: list[str] = []

    def strip_conditions(request, **_):
        requests.append(request.method)
        for header in ("If-None-Match", "If-Match"):
            if header in request.headers:
                del request.headers[header]

    client.meta.events.register("before-sign.s3.PutObject", strip_conditions)
    return S3Store(bucket, "reg", client=client), requests


def test_probe_refuses_server_that_ignores_conditions(s3_env, tmp_path):
    from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
    from artifactfs.resolver.registry import Registry

    bucket = s3_env.create_bucket(f"p-{uuid.uuid4().hex[:12]}")
    store, _ = _s3_store_ignoring_conditions(s3_env, bucket)
    with pytest.raises(ConditionalWritesUnsupportedError, match="does not enforce conditional"):
        store.check_writable()
    path = tmp_path / "data.bin"
    path.write_bytes(b"payload")
    manifest = Manifest(
        [ManifestEntry("data.bin", md5_b64_of_file(str(path)), 7, local_path=str(path))]
    )
    with pytest.raises(ConditionalWritesUnsupportedError):
        Registry(store).commit("acme", "p", "coll", "dataset", manifest)
    with pytest.raises(ConditionalWritesUnsupportedError):
        store.put("x", b"x")
    assert s3_env.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_probe_runs_once_and_leaves_nothing(s3_env):
    bucket = s3_env.create_bucket(f"p-{uuid.uuid4().hex[:12]}")
    client = s3_env.client()
    calls: list[str] = []
    client.meta.events.register(
        "before-sign.s3.*", lambda request, **_: calls.append(request.method)
    )
    store = S3Store(bucket, "reg", client=client)
    t = time.perf_counter()
    store.check_writable()
    elapsed = time.perf_counter() - t
    assert len(calls) == 4  # create, create again, wrong-etag swap, delete
    store.check_writable()
    store.create("k", b"v")
    assert len(calls) == 5
    assert elapsed < 2
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["reg/k"]


# -- timeouts: clear errors, not hangs -----------------------------------------------------------
@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections (kernel backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s.getsockname()[1]
    s.close()


def _s3_at(port: int, monkeypatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKNOTHING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nothing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = Config(s3_endpoint_url=f"http://127.0.0.1:{port}", timeout=1.0, retries=1)
    return S3Store.from_url("s3://bucket/prefix", config)


@pytest.mark.parametrize("kind", ["s3", "http"])
@pytest.mark.parametrize("port_fixture", ["closed_port", "silent_port"])
def test_unreachable_endpoint_is_a_quick_backend_error(kind, port_fixture, request, monkeypatch):
    port = request.getfixturevalue(port_fixture)
    if kind == "s3":
        store: Store = _s3_at(port, monkeypatch)
    else:
        store = HttpStore(f"http://127.0.0.1:{port}/reg/", timeout=1.0, retries=1)
    ops = [lambda: store.get("k"), lambda: store.download_to("k", io.BytesIO())]
    if port_fixture == "closed_port":  # (each silent one costs a full read timeout)
        ops += [
            lambda: store.get_range("k", 0, 10),
            lambda: store.head("k"),
            lambda: list(store.list_children("registry/")),
        ]
    for op in ops:
        t = time.perf_counter()
        with pytest.raises(BackendError) as info:
            op()
        assert not isinstance(info.value, ObjectNotFoundError)
        assert time.perf_counter() - t < 8, "an unreachable endpoint must fail fast"
        assert "127.0.0.1" in str(info.value)
    store.close()


def test_create_retried_after_lost_response_is_still_ours(s3_env):
    """botocore retries a conditional PUT whose response was lost; the retry meets our own
    write (412). The store must report success, not a lost race (or the registry would skip a
    version number and leave an orphan record)."""
    bucket = s3_env.create_bucket(f"r-{uuid.uuid4().hex[:12]}")
    client = s3_env.client()
    retried: list[int] = []

    def lose_first_response(response, attempts, **_):
        if response is not None and response[0].status_code == 200 and attempts == 1:
            retried.append(attempts)
            return 0  # "retry now", as after a connection reset
        return None

    client.meta.events.register("needs-retry.s3.PutObject", lose_first_response)
    store = S3Store(bucket, "reg", client=client)
    store.check_writable()
    retried.clear()
    etag = store.create("v0.json", b"mine")
    assert retried, "the hook forced a retry"
    assert store.get("v0.json") == (b"mine", etag)
    etag = store.swap("v0.json", b"mine again", etag)
    assert store.get("v0.json") == (b"mine again", etag)
    with pytest.raises(PreconditionFailedError):
        store.create("v0.json", b"someone else's")
