"""One command for every benchmark: `python bench/run.py [--only NAME ...] [--runs N]`.

Each bench module exposes `run(ctx) -> list[Figure]`; a Figure is one measurement of ours next to
a baseline measured in the same run (native reads, cp -r, boto3, rclone...), printed as a ratio
against a target. Figures are medians of `--runs` repetitions: these machines are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCHES = [
    "bench_mount",
    "bench_commit",
    "bench_s3",
    "bench_loader",
    "bench_fsspec",
    "bench_ui",
    "bench_viewer",
    "bench_integrity",
    "bench_listing",
    "bench_drafts",
    "bench_bigfile",
]


def paired(
    med: Callable[[Callable[[], float]], float],
    ours: Callable[[], float],
    base: Callable[[], float],
) -> tuple[float, float]:
    """Medians of ours and the baseline measured in turn (A B A B...), so drift hits both."""
    a: list[float] = []
    b: list[float] = []

    def one() -> float:
        a.append(ours())
        b.append(base())
        return 0.0

    med(one)
    a.sort()
    b.sort()
    return a[len(a) // 2], b[len(b) // 2]


@dataclass
class Figure:
    name: str
    ours: float
    baseline: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline


@dataclass
class Context:
    workdir: Path
    runs: int
    quick: bool
    extra: dict = field(default_factory=dict)

    def median(self, fn: Callable[[], float], runs: int | None = None) -> float:
        """Median of `runs` calls of `fn` (each returns a measurement)."""
        return statistics.median(fn() for _ in range(runs or self.runs))


def drop_caches() -> bool:
    """Empty the page cache (root only) so a "cold" read really reads; False if we cannot."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def read_file(path: str | os.PathLike[str], bs: int = 1 << 20) -> int:
    """Read a whole file in `bs` chunks, unbuffered, as `cat` or `cp` would; return the bytes."""
    n = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(bs):
            n += len(chunk)
    return n


def isolated_home(workdir: Path) -> Path:
    """Point this process (and the mounts it starts) at a fresh home under `workdir`, so a bench
    never reads or fills the user's own cache, registry or drafts."""
    home = workdir / "home"
    for sub in ("cache", "data", "state", "config"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    os.environ.update(
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        ARTIFACTFS_ENTITY="bench",
    )
    return home


@contextlib.contextmanager
def mounted(mountpoint: Path, registry: str, **options: object) -> Iterator[Path]:
    """A read-only artifactfs mount of `registry` at `mountpoint` for the block (MountOptions
    fields as keywords: fuse_lib, threads, ...); always unmounted."""
    from artifactfs.fusefs.mount import MountOptions, start_background, unmount

    mountpoint.mkdir(parents=True, exist_ok=True)
    start_background(
        MountOptions(str(mountpoint), registry=registry, read_only=True, **options)  # type: ignore[arg-type]
    )
    try:
        yield mountpoint
    finally:
        unmount(str(mountpoint))


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_benches(names: list[str], ctx: Context) -> tuple[list[Figure], list[str]]:
    """Every bench in turn; one that fails is reported (traceback on stderr) and the others
    still run, so a long run is never lost to its last module."""
    figures: list[Figure] = []
    failed: list[str] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            print(f"# {name}: not written yet", flush=True)
            continue
        print(f"# {name}", flush=True)
        try:
            module_figures = list(module.run(ctx))
        except Exception:
            traceback.print_exc()
            print(f"# {name}: FAILED (traceback above)", flush=True)
            failed.append(name)
            continue
        for fig in module_figures:
            figures.append(fig)
            ratio = f"{fig.ratio:8.2f}x" if fig.ratio is not None else "         "
            base = f"{fig.baseline:12.3f}" if fig.baseline is not None else " " * 12
            verdict = {True: "MET", False: "MISSED", None: ""}[fig.met]
            print(
                f"{fig.name:48s} {fig.ours:12.3f} {base} {fig.unit:8s} {ratio} "
                f"{fig.target:18s} {verdict} {fig.note}",
                flush=True,
            )
    return figures, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="bench modules to run (default: all)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure (median)")
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run")
    parser.add_argument("--workdir", help="where to build data (default: a temp dir)")
    parser.add_argument("--json", help="also write the figures as JSON here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="artifactfs-bench-"))
    try:
        figures, failed = run_benches(args.only or BENCHES, Context(workdir, args.runs, args.quick))
    finally:
        if not args.workdir:  # tens of GB of generated data: never leave it in /tmp
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(f) for f in figures], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
