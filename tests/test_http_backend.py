"""A read-only registry over HTTP: export a local registry, serve it with nginx, read it back
through the Resolver (names -> versions -> manifests -> bytes through the blob cache) and the
`artifactfs export` command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artifactfs.errors import ArtifactNotFoundError, ReadOnlyBackendError
from artifactfs.resolver.backends.local import LocalStore
from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.names import ArtifactRef
from artifactfs.resolver.registry import Registry
from artifactfs.resolver.resolver import Resolver

servers = pytest.importorskip("servers")


def _commit(registry: Registry, tmp: Path, files: dict[str, bytes], aliases=()) -> int:
    entries = []
    for name, data in files.items():
        path = tmp / f"staged-{os.urandom(4).hex()}"
        path.write_bytes(data)
        entries.append(
            ManifestEntry(name, md5_b64_of_file(str(path)), len(data), local_path=str(path))
        )
    return registry.commit(
        "acme", "proj", "mnist", "dataset", Manifest(entries), aliases=aliases
    ).version


@pytest.fixture
def exported(tmp_path):
    """A local registry with two versions, exported by the CLI into a served directory."""
    from artifactfs.cli import main

    src = tmp_path / "registry"
    registry = Registry(LocalStore(src))
    big = os.urandom(3 * (1 << 20) + 7)
    v0 = {"train/a.bin": b"a" * 1000, "README": b"hello"}
    v1 = {"train/a.bin": b"b" * 1000, "big.bin": big, "README": b"hello"}
    assert _commit(registry, tmp_path, v0, aliases=["best"]) == 0
    assert _commit(registry, tmp_path, v1) == 1
    site = tmp_path / "www" / "team"
    assert main(["--registry", str(src), "export", str(site)]) == 0
    try:
        web = servers.Nginx.start(tmp_path / "www")
    except servers.ServerUnavailable as e:
        pytest.skip(f"nginx unavailable: {e}")
    yield f"{web.url}/team/", {0: v0, 1: v1}, src, site, web
    web.stop()


def test_resolve_and_read_through_cache(exported):
    url, versions, _, _, web = exported
    resolver = Resolver.open(registry=url, ttl=0)
    reg = resolver.registry
    assert reg.entities() == ["acme"]
    assert reg.collections("acme", "proj") == ["mnist"]
    assert reg.version_numbers("acme", "proj", "mnist") == [0, 1]
    assert reg.aliases("acme", "proj", "mnist") == {"latest": 1, "best": 0}
    for alias, n in (("latest", 1), ("best", 0), ("v0", 0)):
        record = reg.resolve(ArtifactRef("mnist", "acme", "proj", alias))
        assert record.version == n
        manifest = reg.manifest(record)
        assert sorted(e.path for e in manifest) == sorted(versions[n])
        for entry in manifest:
            data = versions[n][entry.path]
            assert resolver.read(entry, 0, len(data) + 10) == data
            assert resolver.read(entry, 3, 5) == data[3:8]
            assert resolver.fetch(entry).read_bytes() == data
    latest = reg.manifest(reg.resolve(ArtifactRef("mnist", "acme", "proj", "latest")))
    with pytest.raises(ReadOnlyBackendError):
        reg.commit("acme", "proj", "mnist", "dataset", latest)

    web.stop()  # cached entries stay readable with the server gone
    for entry in latest:
        assert resolver.fetch(entry).read_bytes() == versions[1][entry.path]
    resolver.close()


def test_reexport_is_incremental_and_prunes(exported, tmp_path):
    from artifactfs.resolver.export import export_registry

    url, _, src, site, _ = exported
    store = LocalStore(src)
    registry = Registry(store)
    record = registry.resolve(ArtifactRef("mnist", "acme", "proj", "best"))
    registry.remove_alias(record, "best")
    _commit(registry, tmp_path, {"new.txt": b"new"})
    store.put("registry/acme/proj/mnist/notes.json", b"{}")
    export_registry(store, site)
    store.delete("registry/acme/proj/mnist/notes.json")  # deleted at the source: pruned
    stats = export_registry(store, site)
    assert not (site / "registry/acme/proj/mnist/notes.json").exists()
    assert stats.removed == 1
    assert stats.unchanged > 0
    assert (site / "registry/acme/proj/mnist/versions/v2.json").is_file()
    index = (site / "registry/acme/proj/mnist/.index.json").read_text()
    assert "notes.json" not in index and "versions" in index
    served = Resolver.open(registry=url, ttl=0).registry
    assert served.aliases("acme", "proj", "mnist") == {"latest": 2}  # the removed alias is gone
    with pytest.raises(ArtifactNotFoundError):
        served.resolve(ArtifactRef("mnist", "acme", "proj", "best"))


def test_export_refuses_foreign_directory(tmp_path):
    from artifactfs.cli import main

    dest = tmp_path / "precious"
    dest.mkdir()
    (dest / "thesis.tex").write_text("do not delete")
    assert main(["--registry", str(tmp_path / "reg"), "export", str(dest)]) == 1
    assert (dest / "thesis.tex").read_text() == "do not delete"
