"""`artifactfs ui`: time to open a 100k-file version's page, over HTTP, in one run.

`python bench/run.py --only bench_ui [--quick] [--runs N]`

Data (synthetic manifests, no blobs needed to list): `wide` = 100 folders x 1000 files and
`flat` = 100k files in one folder, both 100,000 entries (so the commit stores their prebuilt
index, as for every version that big), and `unindexed` = 99,999 entries in 100 folders (just
under that threshold: the page's process indexes the manifest itself). "first open" is a fresh
server with an empty local index dir (the page fetches or builds the index); "warm" is the same
page again. The baseline is what a page that re-parsed the manifest JSON per request would
pay at least: `Manifest.from_bytes` of the same manifest. Target: first open < 1 s.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import threading

import requests
from run import Context, Figure, isolated_home, timed

N = 100_000


def _manifest(n: int, folders: int):  # type: ignore[no-untyped-def]
    from artifactfs.resolver.manifest import Manifest, ManifestEntry

    per = max(1, n // folders)
    return Manifest(
        ManifestEntry(
            f"d{i // per:03d}/f{i:06d}.bin" if folders > 1 else f"f{i:06d}.bin",
            base64.b64encode(hashlib.md5(b"%d" % i).digest()).decode(),  # a real digest
            1000 + i % 7,
        )
        for i in range(n)
    )


def run(ctx: Context) -> list[Figure]:
    from artifactfs.resolver.manifest import Manifest
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.resolver.version_index import index_dir as index_dir_of
    from artifactfs.settings import load_config
    from artifactfs.ui.server import Server

    work = ctx.workdir / "ui"
    shutil.rmtree(work, ignore_errors=True)
    isolated_home(work)
    config = load_config(registry=str(work / "registry"))
    resolver = Resolver.open(config)
    cases = {"wide": (N, 100), "flat": (N, 1), "unindexed": (N - 1, 100)}
    raws = {}
    for name, (n, folders) in cases.items():
        manifest = _manifest(n // 10 if ctx.quick else n, folders)
        raws[name] = manifest.to_bytes()
        resolver.registry.commit("bench", "ui", name, "dataset", manifest)
    index_dir = index_dir_of(config.cache_dir)

    def page_once(name: str, path: str = "", page: int = 1) -> tuple[float, float]:
        shutil.rmtree(index_dir, ignore_errors=True)
        server = Server(resolver, "127.0.0.1", 0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"{server.url}a/bench/ui/{name}:v0/files/{path}?page={page}"
        try:
            with requests.Session() as http:

                def get() -> None:
                    r = http.get(url, timeout=60)
                    r.raise_for_status()
                    assert "<table" in r.text

                first = timed(get)
                warm = timed(get)
        finally:
            server.close()
            thread.join(10)
        return first, warm

    figures = []
    runs = min(ctx.runs, 5)
    for name, path, page in (
        ("wide", "", 1),
        ("flat", "", 1),
        ("flat", "", 300),
        ("unindexed", "", 1),
    ):
        results = [page_once(name, path, page) for _ in range(runs)]
        results.sort()
        first, warm = results[len(results) // 2]
        parse = ctx.median(lambda n=name: timed(lambda: Manifest.from_bytes(raws[n])), runs)
        label = f"{name}{' page ' + str(page) if page > 1 else ''}"
        figures.append(
            Figure(
                f"ui: open 100k-file version, {label}, first (s)",
                first,
                parse,
                "s",
                "< 1 s",
                first < 1.0,
                "baseline: parse the manifest JSON once",
            )
        )
        figures.append(Figure(f"ui: open 100k-file version, {label}, warm (s)", warm, parse, "s"))
    resolver.close()
    return figures
