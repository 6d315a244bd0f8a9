"""`artifactfs ui` as a dataset viewer: a big Parquet file's pages, a 100k-image folder's grid,
and the server's memory while paging them, over HTTP against a real `artifactfs ui` process.

`python bench/run.py --only bench_viewer [--quick] [--runs N]`; BENCH_VIEWER_GB=N sets the big
Parquet file's size (default 10, --quick 1).

Data: `big.parquet` (BENCH_VIEWER_GB GiB: 20 double columns plus an int64 id, 256k-row row
groups of ~40 MiB, uncompressed so its size is what it says) and `small.parquet` (the same row
groups, a tenth as many), each committed as a real blob to an embedded registry; a version whose
`train/` folder holds 100,000 PNG entries in 100 class folders (the first 1,200 real images,
the rest entries the pages never show, so their bytes are never read). The server is a fresh
`artifactfs ui --port 0` process per measurement with its own empty cache, so "first" includes
filling the cache with what the page reads (the footer, one row group's column pages), but not
Python's start-up. Baseline for a page: pyarrow reading the same rows from the local file
(`ParquetFile(path).iter_batches` in the same row group), what any viewer pays at least.
Target: a page < 1 s on the big file, at any position; grid page 1 (HTML and its 60 thumbnails,
made on the server) < 1 s; the server's peak RSS < 300 MB.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from run import Context, Figure, isolated_home, timed

ROWS_PER_GROUP = 256 * 1024
COLUMNS = 20
IMAGES = 100_000
REAL_IMAGES = 1_200


class _HashingFile(io.RawIOBase):
    """A file that md5-hashes what is written (the blob's digest without a second read)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")  # noqa: SIM115
        self.md5 = hashlib.md5()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
        self.md5.update(b)
        self.size += len(b)
        return self.f.write(b)

    def close(self) -> None:
        self.f.close()
        super().close()


def _parquet(path: Path, groups: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    cols = {f"x{j:02d}": pa.array(rng.standard_normal(ROWS_PER_GROUP)) for j in range(COLUMNS)}
    sink = _HashingFile(path)
    schema = pa.schema([("id", pa.int64())] + [(k, pa.float64()) for k in cols])
    with pq.ParquetWriter(sink, schema, compression="none", write_statistics=True) as w:
        for g in range(groups):
            ids = pa.array(np.arange(g * ROWS_PER_GROUP, (g + 1) * ROWS_PER_GROUP))
            w.write_table(pa.table({"id": ids, **cols}, schema=schema))
    sink.close()
    return sink


def _png(i: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (320, 240), (i * 37 % 256, i * 91 % 256, i * 13 % 256))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _entry(path: str, md5, size: int, local: str | None = None):  # type: ignore[no-untyped-def]
    import base64

    from artifactfs.resolver.manifest import ManifestEntry

    digest = base64.b64encode(md5.digest()).decode()
    return ManifestEntry(path, digest, size, local_path=local)


class UiProcess:
    """`artifactfs ui` in its own process, with its own empty cache; peak RSS from /proc."""

    def __init__(self, registry: str, cache: Path) -> None:
        shutil.rmtree(cache, ignore_errors=True)
        env = dict(os.environ, ARTIFACTFS_CACHE_DIR=str(cache))
        cmd = [sys.executable, "-m", "artifactfs", "--registry", registry, "ui", "--port", "0"]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        self.url = line.split()[2].rstrip("/")
        self.http = requests.Session()

    def get(self, path: str) -> requests.Response:
        r = self.http.get(self.url + path, timeout=120)
        r.raise_for_status()
        return r

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(30)


def run(ctx: Context) -> list[Figure]:
    import pyarrow.parquet as pq

    from artifactfs.resolver.manifest import Manifest
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.settings import load_config

    work = ctx.workdir / "viewer"
    shutil.rmtree(work, ignore_errors=True)
    isolated_home(work)
    registry = str(work / "registry")
    resolver = Resolver.open(load_config(registry=registry))
    gib = float(os.environ.get("BENCH_VIEWER_GB", "1" if ctx.quick else "10"))
    group_bytes = ROWS_PER_GROUP * (COLUMNS + 1) * 8
    sizes = {"big": max(2, int(gib * (1 << 30) / group_bytes))}
    sizes["small"] = max(1, sizes["big"] // 10)
    files = {}
    for name, groups in sizes.items():
        path = work / f"{name}.parquet"
        t = time.perf_counter()
        sink = _parquet(path, groups)
        files[name] = (path, groups)
        print(f"bench_viewer: wrote {path} ({sink.size / 2**30:.2f} GiB, {groups} row groups) "
              f"in {time.perf_counter() - t:.0f} s", file=sys.stderr)  # fmt: skip
        entry = _entry(f"{name}.parquet", sink.md5, sink.size, str(path))
        resolver.registry.commit("bench", "viewer", name, "dataset", Manifest([entry]))
    entries = sorted((f"train/c{i % 100:03d}/img{i:06d}.png", i) for i in range(IMAGES))
    staged = work / "images"
    staged.mkdir(exist_ok=True)
    manifest_entries = []
    for n, (path, i) in enumerate(entries):
        if n < REAL_IMAGES:  # the first pages' images, in path order: real bytes
            data = _png(i)
            local = staged / f"{i}.png"
            local.write_bytes(data)
            manifest_entries.append(_entry(path, hashlib.md5(data), len(data), str(local)))
        else:
            manifest_entries.append(_entry(path, hashlib.md5(b"%d" % i), 3000))
    resolver.registry.commit("bench", "viewer", "images", "dataset", Manifest(manifest_entries))
    resolver.close()

    runs = min(ctx.runs, 5)
    figures: list[Figure] = []

    def positions(name: str) -> dict[str, int]:
        """Pages at the same places of each file: its start, a row group's start half way,
        200,000 rows into that row group, and the end."""
        groups = sizes[name]
        middle = (groups // 2) * ROWS_PER_GROUP
        return {
            "page 1": 1,
            "middle (row group start)": middle // 50 + 1,
            "200k rows into a row group": (middle + 200_000) // 50 + 1,
            "last page": -(-groups * ROWS_PER_GROUP // 50),
        }

    def baseline(name: str, page: int) -> float:
        path, _ = files[name]
        first = (page - 1) * 50

        def read() -> None:
            pf = pq.ParquetFile(path)
            rg, skip = divmod(first, ROWS_PER_GROUP)
            seen = 0
            for b in pf.iter_batches(
                batch_size=4096, row_groups=[rg], columns=pf.schema_arrow.names[:20]
            ):
                if seen + b.num_rows > skip:
                    b.slice(skip - seen, 50).to_pylist()
                    break
                seen += b.num_rows

        return timed(read)

    for name in ("big", "small"):
        for label, page in positions(name).items():
            firsts, warms = [], []
            for _ in range(runs):
                ui = UiProcess(registry, work / "ui-cache")
                try:
                    url = f"/a/bench/viewer/{name}:v0/files/{name}.parquet?page={page}"
                    firsts.append(timed(lambda u=url, p=ui: p.get(u)))
                    warms.append(timed(lambda u=url, p=ui: p.get(u)))
                    assert f"rows {(page - 1) * 50 + 1:,}\u2013" in ui.get(url).text
                finally:
                    ui.close()
            first, warm = sorted(firsts)[len(firsts) // 2], sorted(warms)[len(warms) // 2]
            base = ctx.median(lambda n=name, p=page: baseline(n, p), runs)
            size = f"{files[name][0].stat().st_size / 2**30:.1f} GiB"
            figures.append(Figure(
                f"viewer: Parquet {size}, {label}, first (s)", first, base, "s", "< 1 s",
                first < 1.0, "baseline: pyarrow reads the same rows from the local file",
            ))  # fmt: skip
            figures.append(Figure(f"viewer: Parquet {size}, {label}, warm (s)", warm, base, "s"))

    def grid_once(ui: UiProcess, gpage: int) -> float:
        def load() -> None:
            html = ui.get(f"/a/bench/viewer/images:v0/files/train?gpage={gpage}").text
            thumbs = re.findall(r'<img loading="lazy" [^>]*src="([^"]+)"', html)
            assert len(thumbs) == 60, len(thumbs)
            with ThreadPoolExecutor(6) as pool:  # a browser's connections per host
                list(pool.map(ui.get, thumbs))

        return timed(load)

    firsts, warms, rss = [], [], []
    for _ in range(runs):
        ui = UiProcess(registry, work / "ui-cache")
        try:
            firsts.append(grid_once(ui, 1))
            warms.append(grid_once(ui, 1))
            for gpage in range(2, REAL_IMAGES // 60 + 1):  # page through every real page
                grid_once(ui, gpage)
            for page in list(positions("big").values()) * 2:
                ui.get(f"/a/bench/viewer/big:v0/files/big.parquet?page={page}")
            rss.append(ui.peak_rss_mb())
        finally:
            ui.close()
    parse = ctx.median(lambda: timed(lambda: Manifest([e for e in manifest_entries])), runs)
    first, warm = sorted(firsts)[len(firsts) // 2], sorted(warms)[len(warms) // 2]
    figures.append(Figure(
        "viewer: 100k-image folder, grid page 1 + 60 thumbnails, first (s)", first, parse, "s",
        "< 1 s", first < 1.0, "baseline: build the 100k-entry manifest in memory",
    ))  # fmt: skip
    figures.append(Figure("viewer: 100k-image folder, grid page 1, warm (s)", warm, parse, "s"))
    peak = max(rss)
    figures.append(Figure(
        "viewer: server peak RSS after 20 grid pages and 8 Parquet pages (MB)", peak, None, "MB",
        "< 300 MB", peak < 300,
    ))  # fmt: skip
    return figures
