"""`artifactfs prefetch NAME[:alias] [PATH_PREFIX]`: fills the shared cache (only what was
asked for), is quiet when piped and shows progress on a terminal, and resumes: a failed or
interrupted run leaves whole entries only, and the next run fetches just the rest."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from mountutil import commit_files, open_registry

from artifactfs.cli import main
from artifactfs.resolver.manifest import b64_to_hex
from artifactfs.resolver.names import parse_artifact_name
from artifactfs.resolver.prefetch import is_cached
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

FILES = {f"train/{i:02d}.bin": os.urandom(1000 + i) for i in range(12)}
FILES.update({"val/a.bin": b"a" * 10, "readme.md": b"# hi\n"})
CLI = [sys.executable, "-m", "artifactfs"]


def _cached(url: str) -> set[str]:
    res = Resolver.open(load_config(registry=url))
    try:
        record = res.registry.resolve(parse_artifact_name("acme/proj/ds:latest"))
        return {e.path for e in res.registry.manifest(record) if is_cached(res, e)}
    finally:
        res.close()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_prefetch_fills_what_was_asked_quietly_and_resumes(registry_url, tmp_path, monkeypatch):
    seed = open_registry(registry_url, cache_dir=tmp_path / "seed-cache")
    rec = commit_files(seed.registry, tmp_path, "ds", FILES)
    manifest = seed.registry.manifest(rec)
    seed.close()
    assert _cached(registry_url) == set()

    piped = subprocess.run([*CLI, "prefetch", "acme/proj/ds:latest", "train/"], capture_output=True)
    assert piped.returncode == 0 and piped.stdout == b"" and piped.stderr == b""
    assert _cached(registry_url) == {p for p in FILES if p.startswith("train/")}

    # a blob the store cannot serve: that entry fails (named, exit 1), the others land
    victim = next(e for e in manifest if e.path == "val/a.bin")
    if not registry_url.startswith("s3://"):
        blob = Path(registry_url) / "blobs/md5" / b64_to_hex(victim.digest)[:2]
        blob = blob / b64_to_hex(victim.digest)[2:]
        blob.rename(blob.with_suffix(".away"))
    err = _Tty()
    with monkeypatch.context() as m:
        if registry_url.startswith("s3://"):
            m.setattr("artifactfs.resolver.resolver.StoreObjectSource.copy_to", _fail)
        m.setattr(sys, "stderr", err)
        rc = main(["prefetch", "acme/proj/ds"])
    shown = err.getvalue()
    assert rc == 1 and "val/a.bin" in shown
    if registry_url.startswith("s3://"):  # every fetch of this process failed
        assert _cached(registry_url) == {p for p in FILES if p.startswith("train/")}
    else:
        assert _cached(registry_url) == set(FILES) - {"val/a.bin"}
        blob.with_suffix(".away").rename(blob)
    assert "prefetch" in shown and "12 were cached" in shown  # the bar and the summary
    assert "acme/proj/ds:v0: 14 file(s)" in shown and ":v0:v0" not in shown

    again = subprocess.run([*CLI, "prefetch", "acme/proj/ds"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert _cached(registry_url) == set(FILES)
    bad = subprocess.run(
        [*CLI, "prefetch", "acme/proj/ds", "nope/"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def _fail(self, *args, **kwargs):
    from artifactfs.errors import BackendError

    raise BackendError("test: the store refuses")
