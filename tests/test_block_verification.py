"""Every byte served of a big entry is checked against what the version anchors (issue 20, item 2).

A 40 MiB entry is cached and read in blocks; its blob object is then replaced in the store by
other bytes of the same size (what anyone who can write the bucket could do). Through the
mount (`cat`, `pread`), fsspec (`read`, `cat_file`, seek + read) and `download()`, on the local,
S3 and HTTP backends, the reader gets an error (EIO, or a named error) and a log line, never a
wrong byte. Entries without block digests (logged by W&B or an older artifactfs) are verified
whole before their first byte is served.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import pytest
from mountutil import mounted

import artifactfs as af
from artifactfs import fsspec_fs
from artifactfs.errors import DigestMismatchError, InvalidRecordError
from artifactfs.resolver import keys
from artifactfs.resolver.blockrecord import record_key
from artifactfs.resolver.gc import GarbageCollector
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

SIZE = 40 << 20
NAME = "acme/proj/big:v0"


def _commit(path: Path) -> None:
    with af.init(entity="acme", project="proj") as run:
        art = af.Artifact("big", type="dataset")
        art.add_file(str(path), name="big.bin")
        run.log_artifact(art)


def _entry(resolver: Resolver) -> ManifestEntry:
    record = resolver.registry.resolve(parse_artifact_name(NAME))
    resolver.registry.reader.block_digests.load(record)  # what the mount and fsspec do
    entry = resolver.registry.manifest(record).get("big.bin")
    assert entry is not None
    return entry


def _edit_record(registry: Path, edit: Callable[[dict[str, Any]], object]) -> str:
    """Change NAME's version record in place, as anyone who can write the registry could;
    returns the text it had."""
    record_file = registry / keys.version_key("acme", "proj", "big", 0)
    text = record_file.read_text()
    body = json.loads(text)
    edit(body)
    record_file.write_text(json.dumps(body))
    return text


def _empty_cache() -> None:
    """What the committing process cached is not what a reader on another machine has."""
    cache = Path(load_config().cache_dir)
    for sub in ("objects", "blocks"):
        shutil.rmtree(cache / sub, ignore_errors=True)


@pytest.fixture(params=["local", "s3", "http"])
def tampered(request, tmp_path, monkeypatch):
    """A version holding a 40 MiB entry whose blob was replaced in the store by other bytes of
    the same size; yields (registry url, the original bytes)."""
    data = os.urandom(SIZE)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    key = keys.blob_key(hashlib.md5(data).hexdigest())
    other = os.urandom(SIZE)
    if request.param == "s3":
        server = request.getfixturevalue("s3_env")
        bucket = f"reg-{uuid.uuid4().hex[:12]}"
        server.create_bucket(bucket)
        url = f"s3://{bucket}/artifacts"
        monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
        _commit(src)
        server.client().put_object(Bucket=bucket, Key=f"artifacts/{key}", Body=other)
        yield url, data
        return
    registry = tmp_path / "registry"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(registry))
    _commit(src)
    if request.param == "local":
        (registry / key).write_bytes(other)
        yield str(registry), data
        return
    servers = pytest.importorskip("servers")
    site = tmp_path / "www" / "team"
    from artifactfs.cli import main

    assert main(["--registry", str(registry), "export", str(site)]) == 0
    (site / key).write_bytes(other)
    try:
        web = servers.Nginx.start(tmp_path / "www")
    except servers.ServerUnavailable as e:
        pytest.skip(f"nginx unavailable: {e}")
    url = f"{web.url}/team/"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    try:
        yield url, data
    finally:
        web.stop()


@pytest.mark.fuse
def test_a_replaced_big_blob_is_never_served(tampered, tmp_path, caplog):
    url, data = tampered
    _empty_cache()
    with mounted(tmp_path / "mnt", registry=url) as m:
        path = m.path / NAME / "big.bin"
        assert path.stat().st_size == SIZE
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(OSError) as e:
                os.pread(fd, 4096, 25 << 20)  # a ranged read, nothing read before it
            assert e.value.errno == errno.EIO
        finally:
            os.close(fd)
        cat = subprocess.run(["cat", str(path)], capture_output=True, timeout=120)
        assert cat.returncode != 0 and b"Input/output error" in cat.stderr
        assert data.startswith(cat.stdout)  # whatever came out before the error is right
        assert "does not match the digest recorded at commit" in m.log()
        assert "big.bin" in m.log()

    fsspec_fs.reset()
    _empty_cache()
    fs = fsspec.filesystem("artifact")
    with caplog.at_level(logging.WARNING), pytest.raises(DigestMismatchError):
        fs.cat_file(f"{NAME}/big.bin", 30 << 20, (30 << 20) + 100)
    assert "does not match" in caplog.text
    with pytest.raises(DigestMismatchError), fs.open(f"{NAME}/big.bin") as f:
        f.seek(12 << 20)
        f.read(1000)
    with pytest.raises(DigestMismatchError), fs.open(f"{NAME}/big.bin") as f:
        f.read()
    with pytest.raises(DigestMismatchError):
        af.Api().artifact(NAME).download(root=str(tmp_path / "out"))
    fsspec_fs.reset()


def test_an_entry_without_block_digests_is_verified_whole_before_any_byte(tmp_path, monkeypatch):
    """A version whose record names no block digests (logged by W&B, or before they existed):
    a small ranged read fetches and checks the whole entry first; a replaced blob is an error.
    With the documented opt-out (`unverified_ranges`) it is read by block, as before."""
    registry = tmp_path / "registry"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(registry))
    data = os.urandom(SIZE)
    (tmp_path / "big.bin").write_bytes(data)
    _commit(tmp_path / "big.bin")
    record = _edit_record(registry, lambda body: body.pop("block_digests"))  # as an older one
    assert '"block_digests": "' in record  # this version had them
    _empty_cache()

    resolver = Resolver.open(ttl=0)
    try:
        entry = _entry(resolver)
        assert resolver.read(entry, 20 << 20, 10) == data[20 << 20 : (20 << 20) + 10]
        assert resolver.cache.stats().whole_first == 1
        assert resolver.cache.stats().bytes_fetched == SIZE  # the whole entry, checked
    finally:
        resolver.close()

    _empty_cache()
    (registry / keys.blob_key(hashlib.md5(data).hexdigest())).write_bytes(os.urandom(SIZE))
    resolver = Resolver.open(ttl=0)
    try:
        entry = _entry(resolver)
        with pytest.raises(DigestMismatchError):
            resolver.read(entry, 20 << 20, 10)
    finally:
        resolver.close()

    _empty_cache()
    resolver = Resolver.open(ttl=0, unverified_ranges=True)
    try:
        entry = _entry(resolver)
        assert len(resolver.read(entry, 20 << 20, 10)) == 10  # unchecked: the opt-out
        assert resolver.cache.stats().bytes_fetched < SIZE
    finally:
        resolver.close()


def test_gc_keeps_the_block_digests_a_version_names(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(registry))
    (tmp_path / "big.bin").write_bytes(os.urandom(9 << 20))
    _commit(tmp_path / "big.bin")
    resolver = Resolver.open(ttl=0)
    try:
        record = resolver.registry.resolve(parse_artifact_name(NAME))
        assert record.block_digests is not None
        key = record_key(record.block_digests)
        assert (registry / key).is_file()
        live, _ = GarbageCollector(resolver.registry, 86400.0).referenced()
        assert key in live
    finally:
        resolver.close()


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0" * 64])
def test_a_bad_block_digest_reference_falls_back_to_whole_verification(bad, tmp_path, monkeypatch):
    """A record naming no valid or no matching block-digest record: logged, and the entry is
    verified whole (the right bytes), never a crash or unchecked bytes."""
    registry = tmp_path / "registry"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(registry))
    data = os.urandom(SIZE)
    (tmp_path / "big.bin").write_bytes(data)
    _commit(tmp_path / "big.bin")
    _edit_record(registry, lambda body: body.update(block_digests=bad))
    _empty_cache()
    resolver = Resolver.open(ttl=0)
    try:
        entry = _entry(resolver)
        assert resolver.read(entry, 20 << 20, 10) == data[20 << 20 : (20 << 20) + 10]
        assert resolver.cache.stats().whole_first == 1
    finally:
        resolver.close()


def test_a_mistyped_block_digest_field_refuses_the_version_by_name(tmp_path, monkeypatch):
    """A version record whose block_digests is not even a string is a broken record: the
    records' type check (resolver/records.py) refuses it with a named error, never a crash."""
    registry = tmp_path / "registry"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", str(registry))
    (tmp_path / "big.bin").write_bytes(os.urandom(SIZE))
    _commit(tmp_path / "big.bin")
    _edit_record(registry, lambda body: body.update(block_digests=["x"]))
    resolver = Resolver.open(ttl=0)
    try:
        with pytest.raises(InvalidRecordError, match="block_digests"):
            resolver.registry.resolve(parse_artifact_name(NAME))
    finally:
        resolver.close()
