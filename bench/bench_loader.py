"""Data-loader epochs through the mount next to the same epoch on local disk, in one run (issue 10).

    python bench/run.py --only bench_loader [--quick] [--runs N]

torchvision `ImageFolder` + `DataLoader(num_workers=2, shuffle=True)` over 4,000 small PNGs
(--quick: 800) in 10 class directories, one epoch = build the dataset and iterate it once.
Data, registries, a SeaweedFS server and mounts are made here and removed by run.py.

1. warm: page caches warm on both sides (after an epoch each): mount vs local disk; then the
   same with a loader that opens files as Python >= 3.14's `open()` does (no isatty ioctl).
2. cold page cache, blobs cached: caches dropped before each epoch on both sides.
3. cold from SeaweedFS (blob cache emptied, page cache dropped, a fresh mount each time):
   a. the epoch through the mount as is (its sibling read-ahead on),
   b. the same with read-ahead off (what one GET per file costs),
   c. `artifactfs prefetch` then the epoch through the mount,
   each against `artifact.download()` + the same epoch on the downloaded directory.
Figures are samples per second of the whole operation; ratios are ours / baseline.
BENCH_LOADER_START picks how the DataLoader starts its workers (default: Python's own, which is
forkserver from Python 3.14 on Linux: every epoch then starts two fresh interpreters that import
torch, seconds that dwarf reading 4,000 small files on either side; `fork` measures the reads).
Needs torchvision and pillow (`bash scripts/setup.sh bench` installs them).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from run import Context, Figure, drop_caches, isolated_home, paired

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

CLASSES = 10
NAME = "bench/p/imgs"


def open_without_isatty(path: str) -> object:
    """torchvision's default PIL loader with the syscalls Python >= 3.14's `open()` makes.

    WHY: CPython before 3.14 asks `isatty()` of every file `open()` opens with default
    buffering (one TCGETS ioctl, which the kernel forwards to a FUSE daemon every time and
    remembers no answer for); 3.14 skips it for regular files. An explicit buffer size skips it
    on any version, so this measures what the mount costs a loader once that ioctl is gone.
    """
    from PIL import Image

    with open(path, "rb", buffering=io.DEFAULT_BUFFER_SIZE) as f:
        return Image.open(f).convert("RGB")


def epoch(root: Path, loader: Callable[[str], object] | None = None) -> int:
    """One epoch as a user writes it; returns the samples seen."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    extra = {"loader": loader} if loader is not None else {}
    ds = datasets.ImageFolder(str(root), transform=transforms.ToTensor(), **extra)
    start = os.environ.get("BENCH_LOADER_START")  # fork | forkserver | spawn; see the docstring
    batches = DataLoader(
        ds, batch_size=64, num_workers=2, shuffle=True, multiprocessing_context=start or None
    )
    return sum(len(labels) for _, labels in batches)


def rate(fn) -> float:  # type: ignore[no-untyped-def]
    """Samples per second of `fn()` (which returns the samples)."""
    t = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t)


class LoaderBench:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.w = ctx.workdir / "loader"
        self.w.mkdir(parents=True, exist_ok=True)
        self.n = 800 if ctx.quick else 4000
        self.home = isolated_home(self.w)
        self.local = self.w / "local" / "imgs"
        self.cache = self.home / "cache" / "artifactfs"
        self.server = None

    # -- data -----------------------------------------------------------------------------------
    def build(self) -> None:
        import numpy as np
        from PIL import Image

        if not self.local.exists():
            rng = np.random.default_rng(10)
            for i in range(self.n):
                p = self.local / f"class{i % CLASSES:02d}" / f"img{i:05d}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(p)

    def commit(self, registry: str) -> None:
        from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
        from artifactfs.resolver.resolver import Resolver
        from artifactfs.settings import load_config

        res = Resolver.open(load_config(registry=registry), ttl=0)
        try:
            if "imgs" in res.registry.collections("bench", "p"):
                return
            entries = [
                ManifestEntry(
                    str(p.relative_to(self.local)),
                    md5_b64_of_file(str(p)),
                    p.stat().st_size,
                    local_path=str(p),
                )
                for p in sorted(self.local.rglob("*.png"))
            ]
            res.registry.commit("bench", "p", "imgs", "dataset", Manifest(entries))
        finally:
            res.close()

    @contextlib.contextmanager
    def mount(self, registry: str, **opts: object) -> Iterator[Path]:
        from artifactfs.fusefs.mount import MountOptions, start_background, unmount

        mnt = self.w / "mnt"
        mnt.mkdir(exist_ok=True)
        start_background(MountOptions(str(mnt), registry=registry, **opts))  # type: ignore[arg-type]
        try:
            yield mnt / NAME.replace("/imgs", "/imgs:latest")
        finally:
            unmount(str(mnt))

    def start_s3(self) -> str:
        import servers

        self.server = servers.SeaweedFS.start(self.w)
        bucket = self.server.create_bucket("loader")
        os.environ.update(
            AWS_ACCESS_KEY_ID=self.server.access_key,
            AWS_SECRET_ACCESS_KEY=self.server.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            ARTIFACTFS_S3_ENDPOINT_URL=self.server.endpoint_url,
        )
        return f"s3://{bucket}/reg"

    # -- cold from S3 ---------------------------------------------------------------------------
    def cold_mount(self, registry: str, *, prefetch: bool, readahead: bool = True) -> float:
        shutil.rmtree(self.cache, ignore_errors=True)
        files = 1024 if readahead else 0
        with self.mount(registry, readahead_files=files) as root:
            os.listdir(root)
            drop_caches()

            def run() -> int:
                if prefetch:
                    cmd = [sys.executable, "-m", "artifactfs", "--registry", registry]
                    subprocess.run([*cmd, "prefetch", f"{NAME}:latest"], check=True)
                return epoch(root)

            return rate(run)

    def download_then_local(self, registry: str) -> float:
        from artifactfs.sdk.api import Api

        shutil.rmtree(self.cache, ignore_errors=True)
        dest = self.w / "downloaded"
        shutil.rmtree(dest, ignore_errors=True)
        drop_caches()

        def run() -> int:
            Api(registry=registry).artifact(f"{NAME}:latest").download(str(dest))
            return epoch(dest)

        return rate(run)

    # -- figures --------------------------------------------------------------------------------
    def run(self) -> list[Figure]:
        med = self.ctx.median
        figs: list[Figure] = []
        t = time.perf_counter()
        self.build()
        local_reg = str(self.w / "registry")
        self.commit(local_reg)
        print(f"# {self.n} PNGs ready in {time.perf_counter() - t:.1f}s", flush=True)
        note = "" if drop_caches() else "page cache not dropped (not root)"

        with self.mount(local_reg) as root:
            epoch(root)  # fills the blob cache and both page caches
            epoch(self.local)
            ours, base = paired(
                med, lambda: rate(lambda: epoch(root)), lambda: rate(lambda: epoch(self.local))
            )
            figs.append(
                Figure(
                    "loader epoch, warm: mount vs local disk",
                    ours,
                    base,
                    "samples/s",
                    ">= 0.8x local",
                    ours >= 0.8 * base,
                    "CPython < 3.14: one isatty ioctl per open() reaches the daemon",
                )
            )
            ours, base = paired(
                med,
                lambda: rate(lambda: epoch(root, open_without_isatty)),
                lambda: rate(lambda: epoch(self.local, open_without_isatty)),
            )
            figs.append(
                Figure(
                    "loader epoch, warm, open() as Python >= 3.14 makes it (no isatty)",
                    ours,
                    base,
                    "samples/s",
                    ">= 0.8x local",
                    ours >= 0.8 * base,
                )
            )

            def cold(path: Path) -> float:
                drop_caches()
                return rate(lambda: epoch(path))

            ours, base = paired(med, lambda: cold(root), lambda: cold(self.local))
            figs.append(
                Figure(
                    "loader epoch, page cache cold, blobs cached",
                    ours,
                    base,
                    "samples/s",
                    ">= 0.3x local",
                    ours >= 0.3 * base,
                    note,
                )
            )

        # --passthrough (issue 23): every open is an OPEN request, reads are the kernel's
        from artifactfs.fusefs.libfuse_abi import current
        from artifactfs.fusefs.passthrough import unavailable

        why = unavailable(current())
        if why:
            print(f"# bench_loader: passthrough figures skipped: {why}", flush=True)
        else:
            with self.mount(local_reg, passthrough=True) as root:
                epoch(root)
                for label, opener in (("", None), (", open() without isatty", open_without_isatty)):
                    ours, base = paired(
                        med,
                        lambda o=opener: rate(lambda: epoch(root, o)),
                        lambda o=opener: rate(lambda: epoch(self.local, o)),
                    )
                    figs.append(
                        Figure(
                            f"loader epoch, warm, mount --passthrough{label}",
                            ours,
                            base,
                            "samples/s",
                            "(big-file mode; no target)",
                            None,
                        )
                    )
                ours, base = paired(med, lambda: cold(root), lambda: cold(self.local))
                figs.append(
                    Figure(
                        "loader epoch, page cache cold, blobs cached, mount --passthrough",
                        ours,
                        base,
                        "samples/s",
                        "(big-file mode; no target)",
                        None,
                        note,
                    )
                )

        # The connection-mode trade-off (docs/SEMANTICS.md): with --write-cache every open of
        # a file costs one GETATTR (its st_blocks invalidated at every close).
        with self.mount(local_reg, write_cache=True) as root:
            epoch(root)
            ours, base = paired(
                med, lambda: rate(lambda: epoch(root)), lambda: rate(lambda: epoch(self.local))
            )
            figs.append(
                Figure(
                    "loader epoch, warm, mount --write-cache vs local disk",
                    ours,
                    base,
                    "samples/s",
                    "(the trade-off; no target)",
                    None,
                )
            )

        if os.environ.get("BENCH_LOADER_NO_S3"):  # a chroot without the SeaweedFS binary
            print("# bench_loader: S3 figures skipped (BENCH_LOADER_NO_S3)", flush=True)
            return figs
        s3 = self.start_s3()
        self.commit(s3)
        base = med(lambda: self.download_then_local(s3))
        for label, kwargs, target in (
            ("cold from S3, read-ahead", {"prefetch": False}, ""),
            ("cold from S3, read-ahead off", {"prefetch": False, "readahead": False}, ""),
            ("cold from S3, prefetch + epoch", {"prefetch": True}, ">= download + epoch"),
        ):
            ours = med(lambda kwargs=kwargs: self.cold_mount(s3, **kwargs))  # type: ignore[arg-type]
            figs.append(
                Figure(
                    f"loader {label} vs download() + local epoch",
                    ours,
                    base,
                    "samples/s",
                    target,
                    (ours >= base) if target else None,
                    note,
                )
            )
        return figs

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def run(ctx: Context) -> list[Figure]:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        print("# bench_loader: torchvision missing (bash scripts/setup.sh bench installs it)")
        return []
    bench = LoaderBench(ctx)
    try:
        return bench.run()
    finally:
        bench.close()
