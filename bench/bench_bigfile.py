"""Big files through the mount, default mode and `--passthrough`, each next to local disk (issue 23).

    python bench/run.py --only bench_bigfile [--quick] [--runs N]

Data (in ctx.workdir): a 1 GiB random file, a ~1 GiB safetensors file (numpy arrays) and an HF
`datasets` Arrow shard (--quick: 128 MiB each), committed to a local registry and made wholly
cached (`Resolver.fetch`, as `artifactfs prefetch` does) before any figure. Each figure is
mount / local disk, the two measured in turn (A B A B) in the same run:

- `read()` re-read: 1 MiB chunks, page cache warm
- first read of a cached file: page cache dropped (root), 1 MiB chunks
- `mmap` copy-out: the whole file copied out of a read-only mapping (what safetensors does)
- safetensors load: `safetensors.numpy.load_file` (works without torch)
- Arrow scan: `datasets.Dataset.from_file` (memory-maps the shard) and a sum over one column
- 20k x 4 KiB, page cache dropped, blobs cached, 4 reader processes (what a small-file epoch
  pays in each mode: passthrough sends an OPEN per file)

Modes: the default mount, and `--passthrough` where this machine has it (libfuse >= 3.17.1,
root); otherwise its figures are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench_mount import read_many
from run import Context, Figure, drop_caches, isolated_home, mounted, paired, read_file

from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

MiB = 1 << 20


def _mmap_copy(path: str) -> int:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
        n = len(mm)
        out = bytearray(n)
        out[:] = mm  # one copy out of the mapping, as a loader's memcpy
        return n


def _safetensors_load(path: str) -> int:
    from safetensors.numpy import load_file

    return sum(a.nbytes for a in load_file(path).values())


def _arrow_scan(path: str) -> int:
    import pyarrow.compute as pc
    from datasets import Dataset

    ds = Dataset.from_file(path)  # memory-maps the shard, as load_from_disk does
    return int(pc.sum(ds.data.column("x")).as_py())


class Bench:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.w = ctx.workdir / "bigfile"
        self.w.mkdir(parents=True, exist_ok=True)
        self.size = (128 * MiB) if ctx.quick else (1 << 30)
        self.n_small = 2_000 if ctx.quick else 20_000
        isolated_home(self.w)
        self.registry = str(self.w / "registry")
        self.res = Resolver.open(load_config(registry=self.registry), ttl=0)
        self.native = self.w / "native"

    def build(self) -> dict[str, str]:
        """name -> path relative to the version, for every file built (also committed)."""
        self.native.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        raw = self.native / "big.bin"
        if not raw.exists():
            with open(raw, "wb") as f:
                for _ in range(self.size // MiB):
                    f.write(os.urandom(MiB))
        files["raw"] = "big.bin"
        try:
            import numpy as np
            from safetensors.numpy import save_file

            st = self.native / "model.safetensors"
            if not st.exists():
                per = self.size // 16 // 4  # 16 float32 tensors
                save_file(
                    {f"layer{i}": np.random.rand(per).astype(np.float32) for i in range(16)},
                    str(st),
                )
            files["safetensors"] = "model.safetensors"
        except ImportError:
            print("# bench_bigfile: safetensors not installed: its figure is skipped", flush=True)
        try:
            import datasets  # noqa: F401  (the figure reads the shard with it)
            import numpy as np
            import pyarrow as pa

            arrow = self.native / "data.arrow"
            if not arrow.exists():  # an Arrow stream file, the format of `datasets` shards
                rows = self.size // 16
                table = pa.table({"x": np.arange(rows, dtype=np.int64), "y": np.ones(rows)})
                with (
                    pa.OSFile(str(arrow), "wb") as sink,
                    pa.ipc.new_stream(sink, table.schema) as w,
                ):
                    w.write_table(table, max_chunksize=1 << 16)
            files["arrow"] = "data.arrow"
        except ImportError:
            print("# bench_bigfile: datasets not installed: its figure is skipped", flush=True)
        small = self.native / "small"
        if not small.exists():
            for i in range(self.n_small):
                p = small / f"{i // 1000:03d}" / f"s{i:05d}.bin"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(os.urandom(4096))
        big = [
            ManifestEntry(rel, md5_b64_of_file(str(self.native / rel)),
                          (self.native / rel).stat().st_size, local_path=str(self.native / rel))
            for rel in files.values()
        ]  # fmt: skip
        smalls = [
            ManifestEntry(str(p.relative_to(self.native)), md5_b64_of_file(str(p)), 4096,
                          local_path=str(p))
            for p in sorted(small.rglob("*.bin"))
        ]  # fmt: skip
        reg = self.res.registry
        for name, entries in (("big", big), ("small", smalls)):
            if name not in reg.collections("bench", "p"):
                reg.commit("bench", "p", name, "model", Manifest(entries))
            for entry in entries:  # wholly cached, as `artifactfs prefetch` leaves them
                self.res.fetch(entry)
        return files

    @contextlib.contextmanager
    def mount(self, passthrough: bool) -> Iterator[Path]:
        with mounted(self.w / "mnt", self.registry, passthrough=passthrough) as mp:
            yield mp / "bench" / "p"

    def run(self) -> list[Figure]:
        files = self.build()
        if not drop_caches():
            print("# bench_bigfile: not root: 'first read' figures are warm", flush=True)
        from artifactfs.fusefs.libfuse_abi import current
        from artifactfs.fusefs.passthrough import unavailable

        why = unavailable(current())
        modes = [False] if why else [False, True]
        if why:
            print(f"# bench_bigfile: passthrough figures skipped: {why}", flush=True)
        figs: list[Figure] = []
        for passthrough in modes:
            figs += self.mode(passthrough, files)
        return figs

    def mode(self, passthrough: bool, files: dict[str, str]) -> list[Figure]:
        figs: list[Figure] = []
        med = self.ctx.median
        gib = self.size / (1 << 30)
        tag = "passthrough" if passthrough else "default"
        target = ">= 0.9x local" if passthrough else ""
        with self.mount(passthrough) as root:
            v = root / "big:v0"

            def pair(name: str, rel: str, fn: Callable[[str], object], cold: bool = False) -> None:
                size = (self.native / rel).stat().st_size

                def one(path: str) -> float:
                    if cold:
                        drop_caches()
                    else:
                        fn(path)  # warm
                    t = time.perf_counter()
                    fn(path)
                    return size / 1e9 / (time.perf_counter() - t)

                ours, base = paired(
                    med, lambda: one(str(v / rel)), lambda: one(str(self.native / rel))
                )
                ok = ours >= 0.9 * base if passthrough else None
                figs.append(Figure(f"{name} ({gib:g} GiB), {tag}", ours, base, "GB/s", target, ok))

            pair("read() re-read, 1 MiB chunks", files["raw"], read_file)
            pair("first read of a cached file", files["raw"], read_file, cold=True)
            pair("mmap copy-out", files["raw"], _mmap_copy)
            if "safetensors" in files:
                pair("safetensors.numpy.load_file", files["safetensors"], _safetensors_load)
            if "arrow" in files:
                pair("datasets Arrow scan (mmap + column sum)", files["arrow"], _arrow_scan)
            native_small = sorted(str(p) for p in (self.native / "small").rglob("*.bin"))
            paths = [str(root / "small:v0" / os.path.relpath(p, self.native)) for p in native_small]

            def cold_files(ps: list[str]) -> float:
                drop_caches()
                return len(ps) / read_many(ps, 4)

            ours, base = paired(med, lambda: cold_files(paths), lambda: cold_files(native_small))
            figs.append(
                Figure(
                    f"{len(paths)} x 4 KiB cold (blobs cached), 4 proc, {tag}",
                    ours,
                    base,
                    "files/s",
                    "" if passthrough else ">= 0.3x native",
                    None if passthrough else ours >= 0.3 * base,
                )
            )
        return figs


def run(ctx: Context) -> list[Figure]:
    return Bench(ctx).run()
