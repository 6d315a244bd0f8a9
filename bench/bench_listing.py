"""Listing a collection with a long history on S3 (issue 14 item 8), against a real SeaweedFS.

    python bench/run.py --only bench_listing [--quick] [--runs N]

One collection of 10,000 versions (quick: 2,000): v0 committed normally, the rest written as
records directly (10,000 real commits would take most of an hour) and the listing index built
the way a writer builds it for a collection from before the index. Figures, each a median:

1. `Registry.versions()` (what the Python API's artifact_versions and the CLI use), ours vs
   the algorithm before the listing index (LIST the records, GET each), same data, same run.
2. `artifactfs ls entity/project/name` as a process (Python start-up included).
3. The mount: `ls` (listdir) and the `ls -l` command of the project on a fresh mount. `ls -l`
   also asks two extended attributes per entry (ACL, SELinux label), each a FUSE round trip
   whatever the backend, so its baseline is the same command on a mount of a local registry
   holding the same versions (the issue's "local: under 1 s").

Target: every listing of the 10,000 versions in at most 2 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run import Context, Figure, isolated_home, timed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

TARGET = 2.0


class ListingBench:
    def __init__(self, ctx: Context) -> None:
        import servers

        self.ctx = ctx
        self.count = 2_000 if ctx.quick else 10_000
        self.w = ctx.workdir / "listing"
        self.w.mkdir(parents=True, exist_ok=True)
        self.server = servers.SeaweedFS.start(self.w)
        bucket = self.server.create_bucket("listing")
        self.home = isolated_home(self.w)
        os.environ.update(
            AWS_ACCESS_KEY_ID=self.server.access_key,
            AWS_SECRET_ACCESS_KEY=self.server.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            ARTIFACTFS_S3_ENDPOINT_URL=self.server.endpoint_url,
        )
        self.registry = f"s3://{bucket}/reg"

    def close(self) -> None:
        self.server.stop()

    def _registry(self, url: str | None = None):  # -> Registry, fresh (no caches)
        from artifactfs.resolver.resolver import Resolver
        from artifactfs.settings import load_config

        return Resolver.open(load_config(registry=url or self.registry), ttl=0).registry

    def build(self, url: str | None = None) -> None:
        from artifactfs.resolver import keys
        from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
        from artifactfs.resolver.registry.listing import VersionListing

        reg = self._registry(url)
        data = self.w / "f.txt"
        data.write_text("one file")
        entry = ManifestEntry("f.txt", md5_b64_of_file(str(data)), 8, local_path=str(data))
        first = reg.commit("bench", "p", "big", "dataset", Manifest([entry]))
        base = json.loads(first.to_bytes())

        def create(n: int) -> None:
            reg.store.create(
                keys.version_key("bench", "p", "big", n),
                json.dumps({**base, "version": n, "id": f"{n:032x}"}).encode(),
            )

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(create, range(1, self.count)))
        last = reg.version("bench", "p", "big", self.count - 1)
        VersionListing(reg.store).add(last)
        reg.set_alias(last, "latest")  # as the last real commit would have left it

    def before(self) -> float:
        """The listing as it was: LIST the version records, then GET each one in turn."""
        from artifactfs.resolver import keys
        from artifactfs.resolver.records import VersionRecord

        store = self._registry().store

        def listing() -> None:
            prefix = keys.versions_prefix("bench", "p", "big")
            numbers = sorted(
                n
                for n in map(keys.parse_version_file, store.list_children(prefix))
                if n is not None
            )
            records = [
                VersionRecord.from_bytes(*store.get(keys.version_key("bench", "p", "big", n)))
                for n in numbers
            ]
            assert len(records) == self.count

        return timed(listing)

    def api(self) -> float:
        reg = self._registry()
        return timed(lambda: len(reg.versions("bench", "p", "big")) == self.count or 1 / 0)

    def cli(self) -> float:
        def ls() -> None:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "artifactfs",
                    "--registry",
                    self.registry,
                    "ls",
                    "bench/p/big",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert f"{self.count} version(s)" in out

        return timed(ls)

    def mount(self, long: bool, url: str | None = None) -> float:
        from artifactfs.fusefs.mount import MountOptions, start_background, unmount

        mnt = self.w / "mnt"
        mnt.mkdir(exist_ok=True)
        start_background(MountOptions(str(mnt), registry=url or self.registry, read_only=True))
        try:
            proj = mnt / "bench" / "p"
            os.stat(proj)
            if long:  # the real command: lstat, and getxattr for ACLs and labels, per entry
                t = time.perf_counter()
                out = subprocess.run(["ls", "-l", str(proj)], capture_output=True, check=True)
                elapsed = time.perf_counter() - t
                dirs = [ln for ln in out.stdout.splitlines() if ln.startswith(b"d")]
                assert sum(b" big:v" in ln for ln in dirs) == self.count
                return elapsed
            t = time.perf_counter()
            names = os.listdir(proj)
            elapsed = time.perf_counter() - t
            assert sum(n.startswith("big:v") for n in names) == self.count
            return elapsed
        finally:
            unmount(str(mnt))

    def run(self) -> list[Figure]:
        t = time.perf_counter()
        self.build()
        n = f"{self.count:,}"
        print(f"# {n} versions written and indexed in {time.perf_counter() - t:.1f}s", flush=True)
        med = self.ctx.median
        before = med(self.before, runs=min(self.ctx.runs, 3))
        local = str(self.w / "local-registry")
        self.build(local)
        local_ls_l = med(lambda: self.mount(True, local))
        figs = []
        for label, fn, base, note in (
            ("Registry.versions() (API)", self.api, before, "before the index"),
            ("artifactfs ls (CLI process)", self.cli, before, "before the index"),
            ("mount: ls of the project", lambda: self.mount(False), before, "before the index"),
            ("mount: ls -l of the project", lambda: self.mount(True), local_ls_l, "local"),
        ):
            ours = med(fn)
            figs.append(
                Figure(
                    f"list {n} versions on S3: {label}",
                    ours,
                    base,
                    "s",
                    f"<= {TARGET:g} s",
                    ours <= TARGET,
                    "baseline: LIST + GET per record (before the index)"
                    if note == "before the index"
                    else "baseline: the same ls -l on a local registry of the same versions",
                )
            )
        return figs


def run(ctx: Context) -> list[Figure]:
    bench = ListingBench(ctx)
    try:
        return bench.run()
    finally:
        bench.close()
