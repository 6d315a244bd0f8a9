"""Commit of a draft into the embedded registry vs `cp -r` of the same files, in one run.

`python bench/run.py --only bench_commit [--quick] [--runs N]`

Data: 10k files / 1 GiB (quick: 1k files / 64 MiB) of random bytes staged in a draft. Each run
commits into a fresh embedded registry (so every blob is really uploaded: hashed, copied,
fsynced) and is compared with `cp -r` of the same tree on the same disk. Then one file changes
and the re-commit must upload exactly one blob (asserted).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from run import Context, Figure, timed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_drafts_support import CountingStore


def _make_tree(root: Path, files: int, total: int) -> None:
    size = total // files
    for i in range(files):
        p = root / f"d{i % 100:02d}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))


def _stage(resolver, write_dir: Path, src: Path):  # type: ignore[no-untyped-def]
    from artifactfs.drafts.draft import open_draft

    draft = open_draft(resolver, write_dir, "bench", "commit", "data")
    draft.materialize()
    shutil.rmtree(draft.files)
    shutil.copytree(src, draft.files)
    return draft


def run(ctx: Context) -> list[Figure]:
    from artifactfs.drafts.commit import commit_draft
    from artifactfs.drafts.draft import open_draft
    from artifactfs.resolver.resolver import Resolver
    from artifactfs.settings import load_config

    files, total = (1000, 64 << 20) if ctx.quick else (10_000, 1 << 30)
    runs = min(ctx.runs, 3)
    work = ctx.workdir / "commit"
    shutil.rmtree(work, ignore_errors=True)
    src = work / "src"
    _make_tree(src, files, total)

    def cp_once() -> float:
        dst = work / "cp-dst"
        shutil.rmtree(dst, ignore_errors=True)
        t = timed(lambda: subprocess.run(["cp", "-r", str(src), str(dst)], check=True))
        shutil.rmtree(dst)
        return t

    state: dict = {}

    def commit_once() -> float:
        run_dir = work / f"run-{len(state)}"
        config = load_config(
            registry=str(run_dir / "registry"),
            cache_dir=str(run_dir / "cache"),
            write_dir=str(run_dir / "drafts"),
        )
        resolver = Resolver.open(config, ttl=0)
        draft = _stage(resolver, config.write_dir, src)
        subprocess.run(["sync"], check=True)
        t = timed(lambda: commit_draft(draft))
        state[run_dir] = (resolver, config)
        return t

    cp_s = ctx.median(cp_once, runs)
    commit_s = ctx.median(commit_once, runs)
    mib = total / (1 << 20)

    # re-commit with one file changed: exactly one blob uploaded
    resolver, config = next(reversed(state.values()))
    counting = CountingStore(resolver.registry.store)
    resolver.registry.store = counting
    draft = open_draft(resolver, config.write_dir, "bench", "commit", "data")
    path = "d00/f00000.bin"
    fd = draft.open_file(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"one more byte")
    os.close(fd)
    draft.writer_closed()
    recommit_s = timed(lambda: commit_draft(draft))
    assert len(counting.blob_puts) == 1, (
        f"re-commit uploaded {len(counting.blob_puts)} blobs, not 1"
    )
    for r, _ in state.values():
        r.close()
    shutil.rmtree(work, ignore_errors=True)
    label = f"{files} files / {mib:.0f} MiB"
    return [
        Figure(f"commit {label} (s) vs cp -r", commit_s, cp_s, "s", "report"),
        Figure(f"commit throughput {label} vs cp -r", mib / commit_s, mib / cp_s, "MiB/s"),
        Figure(
            "re-commit, 1 file changed (s)",
            recommit_s,
            None,
            "s",
            "1 blob uploaded",
            True,
            f"blobs uploaded: {len(counting.blob_puts)}",
        ),
    ]
