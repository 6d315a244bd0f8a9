"""What the cache's integrity checks cost on the hot path (issue 14 item 1).

Every figure is ours (checks on) against the same code with the checks bypassed, in the same
run: `CacheFiles.intact` answering True without looking (no seal stat, no re-hash) and
`ObjectHandle._unchanged` answering True (no fstat per read). The mount figures run the daemon
in a subprocess with those two patched for the baseline (bench code only).

- first open of a cached 4 KiB entry in a process (what a mount's first read of a file pays),
- a read request answered from a held fd (`ObjectHandle.spans`, once per FUSE read),
- through a real mount, fresh each run (empty kernel page cache, cache files warm in the host's):
  first read of 2,000 cached 4 KiB files, and a sequential read of a cached 512 MiB entry;
- the per-block digests of issue 20: a sequential read of the same 512 MiB entry with the blob
  cache emptied before each mount (local registry, so every block is fetched, hashed and
  checked: the block path at its most CPU-bound), against the daemon with the digest check
  patched out (`BlockDigests.bad_block*` answering "all match", blocks sealed with a CRC-32):
  the work the block path did before block digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from run import Context, Figure, drop_caches, isolated_home, read_file

DAEMON = r"""
import json, sys
if sys.argv[2] == "bypassed":
    from artifactfs.cache import handles, layout
    layout.CacheFiles.intact = lambda self, *a, **k: True
    handles.ObjectHandle._unchanged = lambda self, fd: True
if sys.argv[2] == "unchecked":
    from artifactfs.cache.blockdigests import BlockDigests
    BlockDigests.bad_block = lambda self, *a: None
    BlockDigests.bad_block_in_file = lambda self, *a: None
    BlockDigests.digest_of = lambda self, *a: None  # blocks sealed with a CRC-32, as before
from artifactfs.fusefs.mount import MountOptions, serve
sys.exit(serve(MountOptions(**json.loads(sys.argv[1]))))
"""


def _in_process(ctx: Context, n_files: int) -> list[Figure]:
    from artifactfs.cache import BlobCache, content_key
    from artifactfs.cache import handles as H
    from artifactfs.cache import layout as L

    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="integrity-"))
    keys = []
    cache = BlobCache(root, 1 << 30)
    for _ in range(n_files):
        data = os.urandom(4096)
        md5 = hashlib.md5(data).hexdigest()

        class Src:
            def copy_to(self, f, progress=None, data=data):  # type: ignore[no-untyped-def]
                f.write(data)
                return len(data)

        cache.ensure_file(content_key(md5), len(data), Src, md5)  # type: ignore[arg-type]
        keys.append((content_key(md5), md5))
    real_intact, real_unchanged = L.CacheFiles.intact, H.ObjectHandle._unchanged

    def bypass(on: bool) -> None:
        L.CacheFiles.intact = (lambda self, *a, **k: True) if on else real_intact  # type: ignore[method-assign]
        H.ObjectHandle._unchanged = (lambda self, fd: True) if on else real_unchanged  # type: ignore[method-assign]

    def first_opens(bypassed: bool) -> float:
        bypass(bypassed)
        fresh = BlobCache(root, 1 << 30)  # a new process's view: nothing remembered
        t = time.perf_counter()
        for key, md5 in keys:
            fresh.open_handle(key, 4096, lambda: None, md5).close()  # type: ignore[arg-type,return-value]
        bypass(False)
        return (time.perf_counter() - t) / len(keys) * 1e6

    def spans(bypassed: bool) -> float:
        key, md5 = keys[0]
        h = cache.open_handle(key, 4096, lambda: None, md5)  # type: ignore[arg-type,return-value]
        bypass(bypassed)
        best = min(timeit.repeat(lambda: h.spans(0, 4096), number=20000, repeat=9)) / 20000
        bypass(False)
        h.close()
        return best * 1e6

    opens = ctx.median(lambda: first_opens(False)), ctx.median(lambda: first_opens(True))
    reads = ctx.median(lambda: spans(False)), ctx.median(lambda: spans(True))
    cache.close()
    return [
        Figure("first open of a cached 4 KiB entry", *opens, "us", note="seal: one stat"),
        Figure("read answered from a held fd (spans)", *reads, "us", note="one fstat per read"),
    ]


class _Mount:
    def __init__(self, mountpoint: Path, registry: str, variant: str) -> None:
        self.mountpoint = mountpoint
        mountpoint.mkdir(parents=True, exist_ok=True)
        opts = {"mountpoint": str(mountpoint), "registry": registry, "foreground": True,
                "read_only": True, "log_file": str(mountpoint) + ".log"}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DAEMON, json.dumps(opts), variant],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not (mountpoint / ".artifactfs").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mount at {mountpoint} did not come up")
            time.sleep(0.02)

    def close(self) -> None:
        subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)


def _through_mount(ctx: Context, n_files: int, big_mib: int) -> list[Figure]:
    from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.settings import load_config

    registry = str(ctx.workdir / "integrity-registry")
    res = Resolver.open(load_config(registry=registry), ttl=0)
    stage = ctx.workdir / "integrity-stage"
    files = {f"small/f{i:05d}": 4096 for i in range(n_files)} | {"big.bin": big_mib << 20}
    entries = []
    for rel, size in files.items():
        p = stage / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            for _ in range(0, size, 1 << 20):
                f.write(os.urandom(min(size, 1 << 20)))
        entries.append(ManifestEntry(rel, md5_b64_of_file(str(p)), size, local_path=str(p)))
    rec = res.registry.commit("bench", "proj", "integrity", "dataset", Manifest(entries))
    for e in res.registry.manifest(rec):
        res.fetch(e)  # all cached whole (and sealed), before any mount
    version = "bench/proj/integrity:v0"

    def small(variant: str) -> float:
        m = _Mount(ctx.workdir / f"mnt-{variant}", registry, variant)
        try:
            d = m.mountpoint / version / "small"
            names = sorted(os.listdir(d))
            t = time.perf_counter()
            for n in names:
                fd = os.open(d / n, os.O_RDONLY)
                os.read(fd, 8192)
                os.close(fd)
            return len(names) / (time.perf_counter() - t)
        finally:
            m.close()

    def big(variant: str) -> float:
        m = _Mount(ctx.workdir / f"mnt-{variant}", registry, variant)
        try:
            t = time.perf_counter()
            n = read_file(m.mountpoint / version / "big.bin")
            return n / (time.perf_counter() - t) / 1e9
        finally:
            m.close()

    def cold(variant: str) -> float:
        cache = load_config().cache_dir
        for sub in ("objects", "blocks"):
            shutil.rmtree(Path(cache) / sub, ignore_errors=True)
        drop_caches()
        m = _Mount(ctx.workdir / f"mnt-{variant}", registry, variant)
        try:
            t = time.perf_counter()
            n = read_file(m.mountpoint / version / "big.bin")
            return n / (time.perf_counter() - t) / 1e9
        finally:
            m.close()

    figs = []
    for name, fn, unit in ((f"mount: first read of {n_files} cached 4 KiB files", small, "files/s"),
                           (f"mount: cached {big_mib} MiB entry, fresh mount", big, "GB/s")):  # fmt: skip
        pairs = [(fn("checked"), fn("bypassed")) for _ in range(ctx.runs)]  # interleaved
        ours = sorted(p[0] for p in pairs)[len(pairs) // 2]
        base = sorted(p[1] for p in pairs)[len(pairs) // 2]
        figs.append(Figure(name, ours, base, unit, note="baseline: checks bypassed"))
    pairs = [(cold("checked"), cold("unchecked")) for _ in range(ctx.runs)]  # last: empties
    figs.append(
        Figure(
            f"mount: uncached {big_mib} MiB entry, blocks checked (local)",
            sorted(p[0] for p in pairs)[len(pairs) // 2],
            sorted(p[1] for p in pairs)[len(pairs) // 2],
            "GB/s",
            note="baseline: block digests not checked",
        )
    )
    return figs


def run(ctx: Context) -> list[Figure]:
    isolated_home(ctx.workdir)
    n_files = 500 if ctx.quick else 2000
    big_mib = 64 if ctx.quick else 512
    return _in_process(ctx, n_files) + _through_mount(ctx, n_files, big_mib)
