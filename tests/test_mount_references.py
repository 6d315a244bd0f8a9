"""Reference entries (file://, http://) read through a real mount: whole, and by range where
the source allows, so a big referenced file is never fetched whole for a small read."""

from __future__ import annotations

import os

import pytest
from mountutil import mounted
from rangeserver import RangeServer

import artifactfs as af

pytestmark = pytest.mark.fuse


def test_reference_entries_read_through_the_mount(tmp_path, monkeypatch):
    url = str(tmp_path / "registry")
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    local = os.urandom(5000)
    (tmp_path / "nfs").mkdir()
    (tmp_path / "nfs" / "labels.bin").write_bytes(local)
    big = os.urandom((20 << 20) + 5)  # above the cache's block threshold: read by block
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "big.bin").write_bytes(big)
    server = RangeServer(tmp_path / "www")
    try:
        with af.init(entity="acme", project="proj") as run:
            art = af.Artifact("refs", type="dataset")
            art.add_reference(f"file://{tmp_path}/nfs/labels.bin")
            art.add_reference(f"{server.url}/big.bin", name="web/big.bin")
            run.log_artifact(art)
        server.requests.clear()
        with mounted(tmp_path / "mnt", registry=url) as m:
            d = m.path / "acme/proj/refs:v0"
            assert sorted(os.listdir(d)) == ["labels.bin", "web"]
            assert (d / "labels.bin").read_bytes() == local
            assert (d / "web/big.bin").stat().st_size == len(big)
            with open(d / "web/big.bin", "rb") as f:
                f.seek(12 << 20)
                assert f.read(4096) == big[12 << 20 : (12 << 20) + 4096]
            gets = [r for r in server.requests if r[0] == "GET"]
            assert gets and all(rng is not None for _, _, rng in gets), gets  # ranges only
            fetched = sum(
                int(b) - int(a) + 1
                for _, _, rng in gets
                for a, b in [rng.removeprefix("bytes=").split("-")]
            )
            assert fetched < len(big) // 2
    finally:
        server.stop()
