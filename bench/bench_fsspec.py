"""fsspec (`artifact://`) next to the mount and `Artifact.download()`, same data, same run (issue 12).

    python bench/run.py --only bench_fsspec [--quick] [--runs N]

Data (embedded registry in ctx.workdir): one 1 GiB entry and 10,000 x 4 KiB entries
(--quick: 128 MiB, 1,000). Each figure is the fsspec read with the mount's figure as baseline
(ratio = fsspec / mount); download()'s figure is in the note. Two states of the blob cache:

- "blob cache empty": objects and blocks removed before every run, so each front end fills the
  cache from the registry (a local directory: this measures our path, not a network);
- "blob cached": every byte already in the cache (page cache warm too: no drop, the machine is
  shared), so this is the cost of the front end itself.

Reads are whole files in 4 MiB chunks through `fs.open` (big) and `fs.open(...).read()` per
file (small), as pandas or a DataLoader would; the mount is read with plain `open`/`read` and
re-mounted per run so the kernel's page cache of the FUSE files never serves a run; download()
writes into a fresh directory each run (it copies out of the cache: a write per byte).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from run import Context, Figure, isolated_home, mounted, read_file, timed

from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

GiB = 1 << 30
CHUNK = 4 << 20


def _fsspec_read(fs, paths: list[str]) -> int:
    n = 0
    for p in paths:
        with fs.open(p, "rb") as f:
            while chunk := f.read(CHUNK):
                n += len(chunk)
    return n


class Bench:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.w = ctx.workdir / "fsspec"
        self.w.mkdir(parents=True, exist_ok=True)
        self.big_size = (128 << 20) if ctx.quick else GiB
        self.n_small = 1_000 if ctx.quick else 10_000
        self.home = isolated_home(self.w)
        os.environ["ARTIFACTFS_PROJECT"] = "p"
        self.registry = str(self.w / "registry")
        os.environ["ARTIFACTFS_REGISTRY"] = self.registry
        self.config = load_config()
        self.src = self.w / "src"

    def build(self) -> None:
        res = Resolver.open(self.config, ttl=0)
        reg = res.registry
        big = self.src / "big.bin"
        if not big.exists():
            big.parent.mkdir(parents=True, exist_ok=True)
            block = os.urandom(1 << 20)
            with open(big, "wb") as f:
                for i in range(self.big_size >> 20):
                    f.write(hashlib.md5(block + i.to_bytes(8, "little")).digest() + block[16:])
        small = self.src / "small"
        if not small.exists():
            for i in range(self.n_small):
                p = small / f"{i // 1000:03d}" / f"s{i:05d}.bin"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(os.urandom(4096))
        for name, files in (
            ("big", [big]),
            ("small", sorted(small.rglob("*.bin"))),
        ):
            if name in reg.collections("bench", "p"):
                continue
            root = big.parent if name == "big" else small
            entries = [
                ManifestEntry(
                    p.relative_to(root).as_posix(),
                    md5_b64_of_file(str(p)),
                    p.stat().st_size,
                    local_path=str(p),
                )
                for p in files
            ]
            reg.commit("bench", "p", name, "dataset", Manifest(entries))
        res.close()

    def empty_cache(self) -> None:
        for part in ("objects", "blocks"):
            shutil.rmtree(Path(self.config.cache_dir) / part, ignore_errors=True)

    # -- one run of each front end ----------------------------------------------------------------
    def via_fsspec(self, name: str, cold: bool) -> float:
        import fsspec

        from artifactfs.fsspec import filesystem as fsspec_fs

        fsspec_fs.reset()
        fs = fsspec.filesystem("artifact")
        paths = fs.find(f"bench/p/{name}:v0")
        if cold:
            self.empty_cache()
        return timed(lambda: _fsspec_read(fs, paths))

    def via_mount(self, name: str, cold: bool) -> float:
        with mounted(self.w / "mnt", self.registry) as mnt:
            root = mnt / "bench" / "p" / f"{name}:v0"
            paths = [str(p) for p in sorted(root.rglob("*")) if p.is_file()]
            if cold:
                self.empty_cache()
            return timed(lambda: [read_file(p, CHUNK) for p in paths])

    def via_download(self, name: str, cold: bool) -> float:
        import artifactfs as af

        art = af.Api().artifact(f"bench/p/{name}:v0")
        target = self.w / "download"
        shutil.rmtree(target, ignore_errors=True)
        if cold:
            self.empty_cache()
        secs = timed(lambda: art.download(str(target)))
        shutil.rmtree(target, ignore_errors=True)
        return secs

    # -- figures ----------------------------------------------------------------------------------
    def rate(self, how: str, name: str, cold: bool, amount: float) -> float:
        """Median rate (amount per second) of one front end over ctx.runs runs."""
        once = getattr(self, f"via_{how}")
        return self.ctx.median(lambda: amount / once(name, cold))

    def run(self) -> list[Figure]:
        self.build()
        figs: list[Figure] = []
        for name, label, amount, unit in (
            ("big", f"{self.big_size >> 20} MiB entry", self.big_size / 1e9, "GB/s"),
            ("small", f"{self.n_small} x 4 KiB entries", self.n_small, "files/s"),
        ):
            for cold in (True, False):
                state = "blob cache empty" if cold else "blob cached"
                if not cold:  # fill the cache once for the warm runs
                    self.via_download(name, cold=False)
                ours, mount, dl = (
                    self.rate(how, name, cold, amount) for how in ("fsspec", "mount", "download")
                )
                figs.append(
                    Figure(
                        f"fsspec vs mount: {label}, {state}",
                        ours,
                        mount,
                        unit,
                        note=f"download(): {dl:.3g} {unit}",
                    )
                )
        shutil.rmtree(self.w / "download", ignore_errors=True)
        return figs


def run(ctx: Context) -> list[Figure]:
    saved = dict(os.environ)
    try:
        return Bench(ctx).run()
    finally:  # the next bench must not inherit this one's registry and project
        os.environ.clear()
        os.environ.update(saved)
