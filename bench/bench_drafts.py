"""Writing into a draft next to writing on the write dir's own file system, in one run (issue 13).

    python bench/run.py --only bench_drafts [--quick] [--runs N]

Each figure runs the same Python loop in a fresh draft of a fresh mount and in a directory on
the file system that holds the write dir (ext4 on the project's machine), alternating, and
reports the medians: 4 KiB writes and 100-byte writes into one file (64 MiB and 8 MiB; quick:
16 MiB and 2 MiB), creating 2,000 files of 4 KiB (open, write, close), and a 1 GiB sequential
write in 1 MiB blocks (quick: 256 MiB), once with fsync before close (a durable write, as
`dd conv=fsync`) and once without. A measurement ends with close(2), when the mount has the
bytes (the kernel's write-back cache writes back on close); without fsync the native side
has them only in its page cache, so that figure compares write-back to the mount with a
memory copy.
Everything is made under ctx.workdir and removed; the drafts are emptied before the unmount
so nothing is committed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from run import Context, Figure, isolated_home

from artifactfs.fusefs.mount import MountOptions, start_background, unmount

MiB = 1 << 20


def write_loop(path: Path, block: int, total: int, fsync: bool = False) -> float:
    """Seconds to write `total` bytes in `block`-sized writes into a new file (then fsync it
    when asked), and close it."""
    data = os.urandom(block)
    n = total // block
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write = os.write
        for _ in range(n):
            write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t


def create_loop(root: Path, files: int, size: int) -> float:
    """Seconds to create `files` files of `size` bytes (open, write, close each)."""
    data = os.urandom(size)
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i in range(files):
        fd = os.open(root / f"f{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    return time.perf_counter() - t


def _clear(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


@contextlib.contextmanager
def draft_mount(work: Path, write_cache: bool) -> Iterator[Path]:
    """A fresh mount of an empty registry and an empty new draft in it (removed after)."""
    mp = work / "mnt"
    mp.mkdir(parents=True, exist_ok=True)
    start_background(
        MountOptions(
            str(mp),
            registry=str(work / "registry"),
            log_file=str(work / "mount.log"),
            write_cache=write_cache,
        )
    )
    draft = mp / "bench" / "drafts" / ("scratch-wc" if write_cache else "scratch")
    try:
        draft.mkdir(parents=True)
        yield draft
    finally:
        with contextlib.suppress(OSError):
            for child in draft.iterdir():
                _clear(child)
        unmount(str(mp))


def run(ctx: Context) -> list[Figure]:
    work = ctx.workdir / "drafts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    isolated_home(work)
    native = work / "native"
    native.mkdir()
    q = ctx.quick
    cases: list[tuple[str, str, Callable[[Path], float], float, str]] = []

    def throughput(block: int, total: int, fsync: bool = False) -> Callable[[Path], float]:
        return lambda d: total / MiB / write_loop(d / "one.bin", block, total, fsync)

    w4k, w100, big = (16 * MiB, 2 * MiB, 256 * MiB) if q else (64 * MiB, 8 * MiB, 1024 * MiB)
    cases.append(
        (f"draft: 4 KiB writes ({w4k // MiB} MiB)", "MiB/s", throughput(4096, w4k), 0.3, ">=")
    )
    cases.append(
        (f"draft: 100 B writes ({w100 // MiB} MiB)", "MiB/s", throughput(100, w100), 0.1, ">=")
    )
    cases.append(
        (
            "draft: create 2,000 files of 4 KiB",
            "s",
            lambda d: create_loop(d / "many", 2000, 4096),
            3.0,
            "<=",
        )
    )
    cases.append(
        (
            f"draft: sequential write {big // MiB} MiB + fsync (dd conv=fsync)",
            "MiB/s",
            throughput(MiB, big, fsync=True),
            0.7,
            ">=",
        )
    )
    cases.append(
        (
            f"draft: sequential write {big // MiB} MiB, no fsync",
            "MiB/s",
            throughput(MiB, big),
            0.7,
            ">=",
        )
    )

    figures = []
    # Both connection modes (docs/SEMANTICS.md): the targets are for --write-cache; the
    # default (no write-back cache, reading first) is shown for what it costs writers.
    for write_cache, label in ((True, "--write-cache"), (False, "default")):
        with draft_mount(work, write_cache) as draft:
            for name, unit, fn, target, sense in cases:
                ours, base = [], []
                for _ in range(ctx.runs):
                    for where, into in ((draft, ours), (native, base)):
                        into.append(fn(where))
                        for child in list(where.iterdir()):
                            _clear(child)
                o, b = sorted(ours)[len(ours) // 2], sorted(base)[len(base) // 2]
                ratio = o / b
                met = ratio >= target if sense == ">=" else ratio <= target
                figures.append(
                    Figure(
                        f"{name} [{label}]",
                        o,
                        b,
                        unit,
                        f"{sense} {target}x native" if write_cache else "(no target)",
                        met if write_cache else None,
                        "native: write dir's fs",
                    )
                )
    shutil.rmtree(work, ignore_errors=True)
    return figures
