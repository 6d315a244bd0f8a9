"""`artifactfs cache info | prune` on the configured cache directory."""

from __future__ import annotations

import json

from mountutil import fill_cache

from artifactfs.cli import main


def test_cache_info_and_prune(capsys):
    fill_cache(3, 100 << 10)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "300.0 KiB of 20.0 GiB allowed" in out and "3 whole file(s)" in out

    assert main(["cache", "prune", "--max-size", "150KiB"]) == 0
    assert "reclaimed 200.0 KiB (2 files); the cache now uses 100.0 KiB" in capsys.readouterr().out

    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bytes"] == 100 << 10 and info["objects"] == 1

    assert main(["cache", "prune", "--max-size", "0"]) == 0
    capsys.readouterr()
    assert main(["cache", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] == 0


def test_cache_prune_rejects_bad_size(capsys):
    assert main(["cache", "prune", "--max-size", "lots"]) == 1
    assert "invalid size" in capsys.readouterr().err
