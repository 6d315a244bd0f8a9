"""Reference handlers against real things: local files, a real HTTP server, real SeaweedFS S3."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from pathlib import Path

import pytest
from rangeserver import RangeServer

from artifactfs.cache import BlobCache, reference_key
from artifactfs.cache.references import (
    NotDownloadableError,
    TooManyObjectsError,
    open_reference,
    resolve_reference,
    verifiable_md5_hex,
)
from artifactfs.errors import DigestMismatchError, ObjectNotFoundError
from artifactfs.settings import load_config

KiB = 1 << 10


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def read_via_cache(cache: BlobCache, obj, config=None, offset=0, length=None) -> bytes:
    """Read a resolved reference the way the resolver does."""
    key = reference_key(obj.uri, obj.digest, obj.extra.get("versionID"))
    md5_hex = verifiable_md5_hex(obj.uri, obj.digest, obj.extra)

    def source():
        return open_reference(obj.uri, obj.digest, obj.size, obj.extra, config)

    return cache.read(key, obj.size, offset, length or obj.size or 0, source, md5_hex)


@pytest.fixture
def cache(tmp_path):
    c = BlobCache(tmp_path / "cache", 1 << 30, block_size=64 * KiB, block_threshold=256 * KiB)
    yield c
    c.close()


# -- file:// -----------------------------------------------------------------------------------
def test_file_reference_checksum_on_and_off(tmp_path, cache):
    f = tmp_path / "data.bin"
    f.write_bytes(b"hello world")
    uri = f.as_uri()
    (obj,) = resolve_reference(uri)
    assert (obj.uri, obj.path, obj.size) == (uri, "", 11)
    assert obj.digest == b64md5(b"hello world")
    assert verifiable_md5_hex(uri, obj.digest, obj.extra) == hashlib.md5(b"hello world").hexdigest()
    assert read_via_cache(cache, obj) == b"hello world"

    (off,) = resolve_reference(uri, checksum=False)
    assert off.digest == b64md5(f.resolve().as_uri().encode())  # W&B: md5 of the file URI
    assert off.size == 11
    assert verifiable_md5_hex(uri, off.digest, off.extra) is None


def test_file_reference_directory_expanded_recursively(tmp_path):
    root = tmp_path / "ds"
    (root / "sub" / "deep").mkdir(parents=True)
    files = {"a.txt": b"a", "sub/b.txt": b"bb", "sub/deep/c.txt": b"ccc"}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    objs = resolve_reference(root.as_uri())
    assert [o.path for o in objs] == sorted(files)
    for o in objs:
        assert o.uri == f"{root.as_uri()}/{o.path}"
        assert o.digest == b64md5(files[o.path]) and o.size == len(files[o.path])
    assert len(resolve_reference(root.as_uri(), max_objects=3)) == 3
    with pytest.raises(TooManyObjectsError, match="max_objects"):
        resolve_reference(root.as_uri(), max_objects=2)


def test_file_reference_missing_or_changed(tmp_path, cache):
    with pytest.raises(ObjectNotFoundError):
        resolve_reference((tmp_path / "nope").as_uri())
    f = tmp_path / "x.bin"
    f.write_bytes(b"0123456789")
    (obj,) = resolve_reference(f.as_uri())
    f.write_bytes(b"9876543210")  # same size, other bytes: the md5 check on fill catches it
    with pytest.raises(DigestMismatchError):
        read_via_cache(cache, obj)
    f.write_bytes(b"short")
    with pytest.raises(DigestMismatchError, match="changed"):
        open_reference(obj.uri, obj.digest, obj.size, obj.extra)
    assert not any(p.is_file() for p in (cache.root / "objects").rglob("*"))


def test_unknown_scheme_is_tracked_not_downloadable():
    (obj,) = resolve_reference("nfs://server/share/file.bin")
    # W&B's TrackingHandler records the URI itself as the digest (same artifact digest in both)
    assert obj.digest == "nfs://server/share/file.bin" and obj.size is None
    with pytest.raises(NotDownloadableError, match="nfs"):
        open_reference(obj.uri, obj.digest, obj.size, obj.extra)


# -- http(s):// ---------------------------------------------------------------------------------
@pytest.fixture(params=["python", "nginx"])
def http_server(request, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    if request.param == "python":
        server = RangeServer(root)
        yield server
        server.stop()
        return
    servers = pytest.importorskip("servers")
    try:
        nginx = servers.Nginx.start(root, tmp_path / "nginx")
    except servers.ServerUnavailable as e:
        pytest.skip(f"nginx unavailable: {e}")
    nginx.requests = None  # nginx keeps no request log for us
    yield nginx
    nginx.stop()


def test_http_reference_etag_size_and_ranges(http_server, cache):
    data = bytes(range(256)) * 4096  # 1 MiB
    (http_server.root / "big.bin").write_bytes(data)
    url = f"{http_server.url}/big.bin"
    (obj,) = resolve_reference(url)
    assert obj.size == len(data)
    assert obj.extra["etag"].strip('"') == obj.digest and obj.digest  # W&B: ETag without quotes
    assert verifiable_md5_hex(url, obj.digest, obj.extra) is None  # ETags are opaque

    src = open_reference(obj.uri, obj.digest, obj.size, obj.extra)
    assert src.read_range(1000, 10) == data[1000:1010]
    assert src.read_range(len(data) - 4, 100) == data[-4:]
    buf = io.BytesIO()
    assert src.copy_to(buf) == len(data) and buf.getvalue() == data

    if http_server.requests is not None:
        http_server.requests.clear()
    got = read_via_cache(cache, obj, offset=300 * KiB, length=100)
    assert got == data[300 * KiB : 300 * KiB + 100]
    if http_server.requests is not None:  # only the one block was fetched, by range
        assert http_server.requests == [("GET", "/big.bin", "bytes=262144-327679")]


def test_http_reference_changed_object_is_an_error(http_server, cache):
    path = http_server.root / "model.bin"
    path.write_bytes(b"version one")
    (obj,) = resolve_reference(f"{http_server.url}/model.bin")
    path.write_bytes(b"version two!!")
    with pytest.raises(DigestMismatchError, match="changed"):
        read_via_cache(cache, obj)
    with pytest.raises(DigestMismatchError):
        open_reference(obj.uri, obj.digest, obj.size, obj.extra).copy_to(io.BytesIO())


def test_http_reference_missing_and_checksum_off(http_server):
    with pytest.raises(ObjectNotFoundError):
        resolve_reference(f"{http_server.url}/missing.bin")
    (obj,) = resolve_reference(f"{http_server.url}/whatever.bin", checksum=False)
    assert obj.digest == obj.uri and obj.size is None


def test_http_without_etag_uses_url_and_pools_connections(tmp_path, cache):
    root = tmp_path / "www"
    root.mkdir()
    server = RangeServer(root)
    try:
        (root / "noetag.bin").write_bytes(b"x" * 5000)
        url = f"{server.url}/noetag.bin"
        (obj,) = resolve_reference(url)
        assert obj.digest == url and obj.extra == {}
        src = open_reference(obj.uri, obj.digest, obj.size, obj.extra)
        for i in range(20):
            assert src.read_range(i * 100, 100) == b"x" * 100
    finally:
        server.stop()
    assert len(server.requests) == 21
    assert len(server.client_ports) <= 2  # keep-alive: one pooled connection, not 21


# -- s3:// and gs:// (real SeaweedFS) -------------------------------------------------------------
@pytest.fixture
def s3(s3_env):
    config = load_config()
    client = s3_env.client()
    return s3_env, client, config


@pytest.mark.s3
@pytest.mark.parametrize("versioning", [True, False], ids=["versioned", "unversioned"])
def test_s3_reference_single_object_and_overwrite(s3, cache, versioning):
    server, client, config = s3
    bucket = server.create_bucket(f"ref-{uuid.uuid4().hex[:10]}", versioning=versioning)
    client.put_object(Bucket=bucket, Key="models/m.bin", Body=b"original bytes")
    uri = f"s3://{bucket}/models/m.bin"
    (obj,) = resolve_reference(uri, config=config)
    assert (obj.uri, obj.path, obj.size) == (uri, "", 14)
    assert obj.digest == hashlib.md5(b"original bytes").hexdigest()  # single-part ETag
    assert obj.extra["etag"] == obj.digest
    assert ("versionID" in obj.extra) == versioning
    assert verifiable_md5_hex(uri, obj.digest, obj.extra) == obj.digest

    client.put_object(Bucket=bucket, Key="models/m.bin", Body=b"overwritten!!!")
    if versioning:  # still read as logged, through its VersionId
        assert read_via_cache(cache, obj, config) == b"original bytes"
        assert read_via_cache(cache, obj, config, offset=9, length=5) == b"bytes"
    else:  # never silently different bytes
        with pytest.raises(DigestMismatchError, match="changed"):
            read_via_cache(cache, obj, config)


@pytest.mark.s3
@pytest.mark.parametrize("versioning", [True, False], ids=["versioned", "unversioned"])
def test_s3_reference_prefix_pagination_and_max_objects(s3, cache, versioning):
    server, client, config = s3
    bucket = server.create_bucket(f"pre-{uuid.uuid4().hex[:10]}", versioning=versioning)
    keys = [f"ds/part-{i:04d}.bin" for i in range(1005)] + ["ds/sub/x.bin", "dsother/y.bin"]
    for k in keys:
        client.put_object(Bucket=bucket, Key=k, Body=k.encode())
    objs = resolve_reference(f"s3://{bucket}/ds", config=config)  # > 1000: two pages
    assert [o.path for o in objs] == sorted(k[3:] for k in keys if k.startswith("ds/"))
    sub = next(o for o in objs if o.path == "sub/x.bin")
    assert sub.uri == f"s3://{bucket}/ds/sub/x.bin" and sub.size == len("ds/sub/x.bin")
    assert ("versionID" in sub.extra) == versioning
    assert read_via_cache(cache, sub, config) == b"ds/sub/x.bin"
    with pytest.raises(TooManyObjectsError):
        resolve_reference(f"s3://{bucket}/ds/", max_objects=100, config=config)
    with pytest.raises(ObjectNotFoundError):
        resolve_reference(f"s3://{bucket}/nothing-here", config=config)


@pytest.mark.s3
def test_s3_reference_big_object_read_by_blocks(s3, cache, tmp_path):
    """A big S3 reference whose ETag is its MD5 has no block digests (the bytes are not ours to
    hash at commit): a ranged read checks the whole object first; with the documented opt-out
    (`unverified_ranges`) it reads only the block it needs, unchecked."""
    server, client, config = s3
    bucket = server.create_bucket(f"big-{uuid.uuid4().hex[:10]}")
    data = bytes(range(256)) * 4096
    client.put_object(Bucket=bucket, Key="big.bin", Body=data)
    (obj,) = resolve_reference(f"s3://{bucket}/big.bin", config=config)
    assert (
        read_via_cache(cache, obj, config, offset=500 * KiB, length=10)
        == data[500 * KiB : 500 * KiB + 10]
    )
    assert cache.stats().whole_first == 1 and cache.stats().bytes_fetched == len(data)
    optout = BlobCache(
        tmp_path / "optout", 1 << 30, block_size=64 * KiB, block_threshold=256 * KiB,
        unverified_ranges=True,
    )  # fmt: skip
    try:
        assert (
            read_via_cache(optout, obj, config, offset=500 * KiB, length=10)
            == data[500 * KiB : 500 * KiB + 10]
        )
        assert optout.stats().blocks_fetched == 1
    finally:
        optout.close()


@pytest.mark.s3
def test_gs_reference_through_interoperability_endpoint(s3, cache):
    server, client, config = s3
    bucket = server.create_bucket(f"gcs-{uuid.uuid4().hex[:10]}")
    client.put_object(Bucket=bucket, Key="img/a.png", Body=b"png bytes")
    config = config.with_overrides(gcs_endpoint_url=server.endpoint_url)
    (obj,) = resolve_reference(f"gs://{bucket}/img", config=config)
    assert obj.path == "a.png" and obj.uri == f"gs://{bucket}/img/a.png"
    assert obj.digest == b64md5(b"png bytes")  # W&B records GCS md5_hash (base64)
    assert read_via_cache(cache, obj, config) == b"png bytes"


def test_cache_never_imports_upper_layers():
    """Data flows one way (fusefs -> resolver -> cache): no cache module imports upward."""
    import ast

    import artifactfs.cache

    bad = []
    for path in Path(artifactfs.cache.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith(("artifactfs.resolver", "artifactfs.fusefs"))
            ]
    assert bad == []
