"""Mount figures next to native reads of the same bytes, in one run (issue 4).

    python bench/run.py --only bench_mount [--quick] [--runs N]

Builds its own data in ctx.workdir: a 1 GiB file, a 100k-file artifact, 20k x 4 KiB files and a
1M-entry manifest (--quick: 128 MiB, 10k, 2k, 200k). Native baselines read the same bytes from
local disk after the same cache drop. Page caches are dropped with /proc/sys/vm/drop_caches
(root); without root "cold" figures are warm and say so.

Also measures the libfuse2/libfuse3 x single/multi-threaded matrix on the small-file read and
the cold `find`, which is how the default (libfuse3, multi-threaded) was chosen, and the warm
small-file read once more with the syscalls of Python >= 3.14's `open()` (no isatty ioctl).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from run import Context, Figure, drop_caches, isolated_home, mounted, paired, read_file, timed

from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

GiB = 1 << 30


def _read_all(paths: list[str], buffering: int = -1) -> int:
    """Read every file with `open()`. The default buffering is what loaders use; an explicit
    size gives the syscalls of Python >= 3.14's `open()`, which skips the isatty ioctl that
    CPython < 3.14 sends for every file (and a FUSE daemon must answer)."""
    total = 0
    for p in paths:
        with open(p, "rb", buffering=buffering) as f:
            total += len(f.read())
    return total


def read_many(
    paths: list[str], procs: int, reader: Callable[[list[str]], int] = _read_all
) -> float:
    """Seconds to read every file with `procs` processes (1 = this process)."""
    if procs == 1:
        return timed(lambda: reader(paths))
    chunks = [paths[i::procs] for i in range(procs)]
    with mp.get_context("fork").Pool(procs) as pool:
        t = time.perf_counter()
        pool.map(reader, chunks)
        return time.perf_counter() - t


def find_count(root: Path) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run(["find", str(root)], capture_output=True, check=True).stdout
    return time.perf_counter() - t, out.count(b"\n")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.w = ctx.workdir / "mount"
        self.w.mkdir(parents=True, exist_ok=True)
        q = ctx.quick
        self.big_size = (128 << 20) if q else GiB
        self.n_find = 10_000 if q else 100_000
        self.n_small = 2_000 if q else 20_000
        self.n_huge = 200_000 if q else 1_000_000
        self.home = isolated_home(self.w)
        self.registry = str(self.w / "registry")
        self.config = load_config(registry=self.registry)
        self.res = Resolver.open(self.config, ttl=0)
        self.native = self.w / "native"

    # -- data -----------------------------------------------------------------------------------
    def commit(self, name: str, entries: list[ManifestEntry]) -> None:
        reg = self.res.registry
        if name in reg.collections("bench", "p"):
            return
        reg.commit("bench", "p", name, "dataset", Manifest(entries))

    def build(self) -> None:
        big = self.native / "big" / "big.bin"
        if not big.exists():
            big.parent.mkdir(parents=True, exist_ok=True)
            with open(big, "wb") as f:
                block = os.urandom(1 << 20)
                for i in range(self.big_size >> 20):
                    f.write(hashlib.md5(block + i.to_bytes(8, "little")).digest() + block[16:])
        self.commit(
            "big",
            [
                ManifestEntry(
                    "big.bin", md5_b64_of_file(str(big)), big.stat().st_size, local_path=str(big)
                )
            ],
        )
        small = self.native / "small"
        if not small.exists():
            for i in range(self.n_small):
                p = small / f"{i // 1000:03d}" / f"s{i:05d}.bin"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(os.urandom(4096))
        self.commit(
            "small",
            [
                ManifestEntry(
                    str(p.relative_to(small)), md5_b64_of_file(str(p)), 4096, local_path=str(p)
                )
                for p in sorted(small.rglob("*.bin"))
            ],
        )
        many = self.native / "many"
        one = self.native / "one.bin"
        one.write_bytes(b"x" * 100)
        if not many.exists():
            for i in range(self.n_find):
                p = many / f"{i // 1000:03d}" / f"f{i:06d}"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"x" * 100)
        d = md5_b64_of_file(str(one))
        self.commit(
            "many",
            [
                ManifestEntry(f"{i // 1000:03d}/f{i:06d}", d, 100, local_path=str(one))
                for i in range(self.n_find)
            ],
        )
        self.commit(
            "huge",
            [
                ManifestEntry(
                    f"shard{i // 1000:04d}/sample{i:07d}.bin", d, 100, local_path=str(one)
                )
                for i in range(self.n_huge)
            ],
        )

    # -- mounts ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def mount(self, lib: str = "fuse3", threads: bool = True) -> Iterator[Path]:
        with mounted(self.w / "mnt", self.registry, fuse_lib=lib, threads=threads) as mp_:
            yield mp_ / "bench" / "p"

    # -- figures --------------------------------------------------------------------------------
    def run(self) -> list[Figure]:
        t = time.perf_counter()
        self.build()
        print(f"# data ready in {time.perf_counter() - t:.1f}s", flush=True)
        can_drop = drop_caches()
        note = "" if can_drop else "page cache not dropped (not root)"
        figs: list[Figure] = []
        med = self.ctx.median
        big_native = str(self.native / "big" / "big.bin")
        gb = self.big_size / 1e9

        # time to first byte of an uncached big entry (whole objects and blocks emptied first:
        # a reused --workdir would otherwise keep the first block and time a cache hit)
        for part in ("objects", "blocks"):
            shutil.rmtree(self.home / "cache" / "artifactfs" / part, ignore_errors=True)
        with self.mount() as root:
            path = root / "big:v0" / "big.bin"
            os.stat(path)
            t = time.perf_counter()
            with open(path, "rb") as f:
                f.read(4096)
            ttfb = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            with open(big_native, "rb") as f:
                f.read(4096)
            native_ttfb = (time.perf_counter() - t) * 1000
            figs.append(
                Figure(
                    "first byte, uncached big entry",
                    ttfb,
                    native_ttfb,
                    "ms",
                    "<= 50 ms",
                    ttfb <= 50,
                )
            )
            read_file(str(path))  # fill the blob cache completely

        # 1 GiB: first read (blob cache warm, page cache cold) and re-read
        def first(p: str) -> float:
            drop_caches()
            return gb / timed(lambda: read_file(p))

        with self.mount() as root:
            p = str(root / "big:v0" / "big.bin")
            ours = med(lambda: first(p))
            native = med(lambda: first(big_native))
            figs.append(
                Figure(
                    "1 GiB first read (cached blob)",
                    ours,
                    native,
                    "GB/s",
                    ">= 1 GB/s",
                    ours >= 1.0,
                    note,
                )
            )
            read_file(p)
            ours = med(lambda: gb / timed(lambda: read_file(p)))
            read_file(big_native)
            native = med(lambda: gb / timed(lambda: read_file(big_native)))
            figs.append(
                Figure(
                    "1 GiB re-read", ours, native, "GB/s", ">= 0.7x native", ours >= 0.7 * native
                )
            )

        # find over the 100k-file artifact, cold (fresh mount) and warm
        def find_cold() -> float:
            with self.mount() as root:
                drop_caches()
                secs, n = find_count(root / "many:v0")
                return n / secs

        ours = med(find_cold)
        drop_caches()
        native_cold = med(
            lambda: (drop_caches(), self.n_find / find_count(self.native / "many")[0])[1]
        )
        figs.append(
            Figure(
                f"find {self.n_find} files cold",
                ours,
                native_cold,
                "stat/s",
                ">= 20k stat/s",
                ours >= 20_000,
                note,
            )
        )
        with self.mount() as root:
            find_count(root / "many:v0")
            ours = med(lambda: self.n_find / find_count(root / "many:v0")[0])
        native = med(lambda: self.n_find / find_count(self.native / "many")[0])
        figs.append(Figure(f"find {self.n_find} files warm", ours, native, "stat/s"))

        # small files by 1 and 4 processes, for each libfuse x threading configuration
        native_paths = [str(p) for p in sorted((self.native / "small").rglob("*.bin"))]
        rels = [os.path.relpath(p, self.native / "small") for p in native_paths]
        for procs in (1, 4):
            native = med(
                lambda procs=procs: (drop_caches(), len(rels) / read_many(native_paths, procs))[1]
            )
            read_many(native_paths, procs)
            native_warm = med(lambda procs=procs: len(rels) / read_many(native_paths, procs))
            for lib, threads in (
                ("fuse3", True),
                ("fuse3", False),
                ("fuse", True),
                ("fuse", False),
            ):
                with self.mount(lib, threads) as root:
                    paths = [str(root / "small:v0" / r) for r in rels]
                    _read_all(paths)  # blob cache warm

                    def once(paths=paths, procs=procs) -> float:
                        drop_caches()
                        return len(paths) / read_many(paths, procs)

                    ours = med(once)
                    read_many(paths, procs)
                    warm = med(
                        lambda paths=paths, procs=procs: len(paths) / read_many(paths, procs)
                    )
                    if procs == 4 and lib == "fuse3" and threads:
                        quiet = functools.partial(_read_all, buffering=io.DEFAULT_BUFFER_SIZE)
                        ours_q, native_q = paired(
                            med,
                            lambda paths=paths, q=quiet: len(paths) / read_many(paths, 4, q),
                            lambda q=quiet: len(rels) / read_many(native_paths, 4, q),
                        )
                        figs.append(
                            Figure(
                                f"{len(rels)} x 4 KiB warm, 4 proc, open() without isatty"
                                " (Python >= 3.14)",
                                ours_q,
                                native_q,
                                "files/s",
                                ">= 0.7x native",
                                ours_q >= 0.7 * native_q,
                            )
                        )
                tag = f"{'libfuse3' if lib == 'fuse3' else 'libfuse2'} {'mt' if threads else 'st'}"
                default = lib == "fuse3" and threads
                figs.append(
                    Figure(
                        f"{len(rels)} x 4 KiB, {procs} proc, {tag}",
                        ours,
                        native,
                        "files/s",
                        ">= 0.3x native" if procs == 4 and default else "",
                        (ours >= 0.3 * native) if procs == 4 and default else None,
                    )
                )
                figs.append(
                    Figure(
                        f"{len(rels)} x 4 KiB warm, {procs} proc, {tag}",
                        warm,
                        native_warm,
                        "files/s",
                        ">= 0.7x native" if procs == 4 and default else "",
                        (warm >= 0.7 * native_warm) if procs == 4 and default else None,
                    )
                )

        # 1M-entry version: mount + first ls, and RSS (index rebuilt: first mount ever)
        shutil.rmtree(self.home / "cache" / "artifactfs" / "mount-index", ignore_errors=True)
        t = time.perf_counter()
        with self.mount() as root:
            names = os.listdir(root / "huge:v0")
            first_ls = time.perf_counter() - t
            pid = json.loads((root.parent.parent / ".artifactfs" / "mount.json").read_text())["pid"]
            rss = rss_kb(pid) * 1024
            os.listdir(root / "huge:v0" / names[len(names) // 2])
        figs.append(
            Figure(
                f"{self.n_huge} entries: mount + first ls",
                first_ls,
                None,
                "s",
                "<= 2 s",
                first_ls <= 2.0,
                f"{len(names)} dirs",
            )
        )
        figs.append(
            Figure(
                f"{self.n_huge} entries: mount RSS per entry",
                rss / self.n_huge,
                None,
                "B/entry",
                "<= 200 B",
                rss / self.n_huge <= 200,
                f"RSS {rss / 1e6:.0f} MB total",
            )
        )
        with self.mount() as root:
            t = time.perf_counter()
            os.listdir(root / "huge:v0")
            figs.append(
                Figure(
                    f"{self.n_huge} entries: ls, index on disk", time.perf_counter() - t, None, "s"
                )
            )
        return figs


def run(ctx: Context) -> list[Figure]:
    return Bench(ctx).run()
