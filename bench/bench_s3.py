"""S3 figures against a real SeaweedFS on loopback, ours next to the usual tools, in one run.

    python bench/run.py --only bench_s3 [--quick] [--runs N]

1. Cold read of one 1 GiB entry (quick: 128 MiB) stored in the registry bucket: through our mount
   (blob cache emptied, page cache dropped) vs `rclone mount` and `s3fs` of the same object
   (Debian packages rclone, s3fs; skipped with a note when missing) vs boto3 `download_file`.
2. Commit of 10k files / 1 GiB (quick: 1k / 64 MiB) into an S3 registry (hashing included,
   fresh prefix each run) vs boto3's transfer manager uploading the same files.

Target for both: at least the best of the baselines (ratio >= 1 against the best).
All servers and mounts are started and stopped here; data lives in ctx.workdir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from run import Context, Figure, drop_caches, isolated_home, read_file, timed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

MiB = 1 << 20


def _wait_mounted(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.ismount(path):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"mount exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{path} not mounted after {timeout}s")


def _fusermount_u(path: Path) -> None:
    tool = shutil.which("fusermount3") or shutil.which("fusermount") or "umount"
    args = [tool, "-u", str(path)] if "fusermount" in tool else [tool, str(path)]
    subprocess.run(args, check=False, capture_output=True)


@contextlib.contextmanager
def _external_mount(args: list[str], mnt: Path, env: dict[str, str]) -> Iterator[Path]:
    mnt.mkdir(parents=True, exist_ok=True)
    # rclone refuses a custom AWS_CA_BUNDLE on its transport; the endpoint is plain http anyway.
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.Popen(
        args,
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_mounted(mnt, proc)
        yield mnt
    finally:
        _fusermount_u(mnt)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class S3Bench:
    def __init__(self, ctx: Context) -> None:
        import servers

        self.ctx = ctx
        self.w = ctx.workdir / "s3"
        self.w.mkdir(parents=True, exist_ok=True)
        self.big_size = (128 * MiB) if ctx.quick else (1 << 30)
        self.n_files = 1_000 if ctx.quick else 10_000
        self.files_total = (64 * MiB) if ctx.quick else (1 << 30)
        self.server = servers.SeaweedFS.start(self.w)
        self.bucket = self.server.create_bucket("bench")
        self.home = isolated_home(self.w)
        os.environ.update(
            AWS_ACCESS_KEY_ID=self.server.access_key,
            AWS_SECRET_ACCESS_KEY=self.server.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            ARTIFACTFS_S3_ENDPOINT_URL=self.server.endpoint_url,
        )
        self.registry = f"s3://{self.bucket}/reg"
        self.client = self.server.client()

    def close(self) -> None:
        self.server.stop()

    # -- data -----------------------------------------------------------------------------------
    def build_big(self) -> str:
        """Commit the big entry; return its object key in the bucket."""
        from artifactfs.resolver.manifest import (
            Manifest,
            ManifestEntry,
            b64_to_hex,
            md5_b64_of_file,
        )
        from artifactfs.resolver.resolver import Resolver
        from artifactfs.settings import load_config

        big = self.w / "big.bin"
        if not big.exists():
            with open(big, "wb") as f:
                for _ in range(self.big_size // (16 * MiB)):
                    f.write(os.urandom(16 * MiB))
        digest = md5_b64_of_file(str(big))
        res = Resolver.open(load_config(registry=self.registry), ttl=0)
        entry = ManifestEntry("big.bin", digest, big.stat().st_size, local_path=str(big))
        res.registry.commit("bench", "p", "big", "dataset", Manifest([entry]))
        res.close()
        md5 = b64_to_hex(digest)
        return f"reg/blobs/md5/{md5[:2]}/{md5[2:]}"

    def build_files(self) -> list[Path]:
        root = self.w / "files"
        size = self.files_total // self.n_files
        paths = [root / f"{i // 1000:03d}" / f"f{i:05d}.bin" for i in range(self.n_files)]
        if not root.exists():
            for p in paths:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(os.urandom(size))
        return paths

    # -- cold reads -----------------------------------------------------------------------------
    def ours_cold(self, key: str) -> float:
        from artifactfs.fusefs.mount import MountOptions, start_background, unmount

        shutil.rmtree(self.home / "cache" / "artifactfs", ignore_errors=True)
        mnt = self.w / "mnt-ours"
        mnt.mkdir(exist_ok=True)
        start_background(MountOptions(str(mnt), registry=self.registry, read_only=True))
        try:
            path = mnt / "bench" / "p" / "big:v0" / "big.bin"
            os.stat(path)
            drop_caches()
            return self.big_size / 1e9 / timed(lambda: read_file(path))
        finally:
            unmount(str(mnt))

    def rclone_cold(self, key: str) -> float | None:
        rclone = shutil.which("rclone")
        if not rclone:
            return None
        directory, name = key.rsplit("/", 1)
        mnt = self.w / "mnt-rclone"
        env = {
            "RCLONE_S3_PROVIDER": "Other",
            "RCLONE_S3_ENDPOINT": self.server.endpoint_url,
            "RCLONE_S3_ACCESS_KEY_ID": self.server.access_key,
            "RCLONE_S3_SECRET_ACCESS_KEY": self.server.secret_key,
            "RCLONE_S3_FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG": "/dev/null",
        }
        args = [rclone, "mount", f":s3:{self.bucket}/{directory}", str(mnt), "--read-only"]
        with _external_mount(args, mnt, env):
            drop_caches()
            return self.big_size / 1e9 / timed(lambda: read_file(mnt / name))

    def s3fs_cold(self, key: str) -> float | None:
        s3fs = shutil.which("s3fs")
        if not s3fs:
            return None
        directory, name = key.rsplit("/", 1)
        mnt = self.w / "mnt-s3fs"
        passwd = self.w / "s3fs.passwd"
        passwd.write_text(f"{self.server.access_key}:{self.server.secret_key}\n")
        passwd.chmod(0o600)
        args = [
            s3fs,
            f"{self.bucket}:/{directory}",
            str(mnt),
            "-f",
            "-o",
            f"url={self.server.endpoint_url}",
            "-o",
            "use_path_request_style",
            "-o",
            f"passwd_file={passwd}",
            "-o",
            "ro",
        ]
        with _external_mount(args, mnt, {}):
            drop_caches()
            return self.big_size / 1e9 / timed(lambda: read_file(mnt / name))

    def boto3_cold(self, key: str) -> float:
        out = self.w / "boto3-download.bin"
        drop_caches()
        t = timed(lambda: self.client.download_file(self.bucket, key, str(out)))
        out.unlink()
        return self.big_size / 1e9 / t

    # -- commit ---------------------------------------------------------------------------------
    def ours_commit(self, paths: list[Path]) -> float:
        from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
        from artifactfs.resolver.resolver import Resolver
        from artifactfs.settings import load_config

        root = self.w / "files"
        registry = f"s3://{self.bucket}/commit-{uuid.uuid4().hex[:8]}"
        res = Resolver.open(load_config(registry=registry), ttl=0)

        def commit() -> None:
            entries = [
                ManifestEntry(
                    str(p.relative_to(root)),
                    md5_b64_of_file(str(p)),
                    p.stat().st_size,
                    local_path=str(p),
                )
                for p in paths
            ]
            res.registry.commit("bench", "p", "files", "dataset", Manifest(entries))

        t = timed(commit)
        res.close()
        return self.files_total / 1e9 / t

    def boto3_upload(self, paths: list[Path]) -> float:
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        root = self.w / "files"
        prefix = f"boto3-{uuid.uuid4().hex[:8]}"
        manager = create_transfer_manager(self.client, TransferConfig(max_concurrency=10))

        def upload() -> None:
            futures = [
                manager.upload(str(p), self.bucket, f"{prefix}/{p.relative_to(root)}")
                for p in paths
            ]
            for f in futures:
                f.result()

        t = timed(upload)
        manager.shutdown()
        return self.files_total / 1e9 / t

    # -- figures --------------------------------------------------------------------------------
    def run(self) -> list[Figure]:
        med = self.ctx.median
        figs: list[Figure] = []
        t = time.perf_counter()
        key = self.build_big()
        print(f"# big entry committed in {time.perf_counter() - t:.1f}s", flush=True)
        note = "" if drop_caches() else "page cache not dropped (not root)"
        size = f"{self.big_size >> 20} MiB"
        baselines: dict[str, float] = {}
        measures: dict[str, Callable[[str], float | None]] = {
            "rclone mount": self.rclone_cold,
            "s3fs": self.s3fs_cold,
            "boto3 download_file": self.boto3_cold,
        }
        for name, fn in measures.items():
            try:
                value = med(lambda fn=fn: fn(key) or 0.0)
            except Exception as e:  # a baseline tool failing must not hide the others
                print(f"# {name} failed: {e}", flush=True)
                continue
            if value:
                baselines[name] = value
        ours = med(lambda: self.ours_cold(key))
        for name, value in baselines.items():
            figs.append(Figure(f"cold read {size} from S3: mount vs {name}", ours, value, "GB/s"))
        if baselines:
            best_name, best = max(baselines.items(), key=lambda kv: kv[1])
            figs.append(
                Figure(
                    f"cold read {size} from S3 vs best ({best_name})",
                    ours,
                    best,
                    "GB/s",
                    ">= best baseline",
                    ours >= best,
                    note,
                )
            )

        paths = self.build_files()
        ours_c = med(lambda: self.ours_commit(paths))
        boto = med(lambda: self.boto3_upload(paths))
        figs.append(
            Figure(
                f"commit {len(paths)} files / {self.files_total >> 20} MiB to S3 vs boto3",
                ours_c,
                boto,
                "GB/s",
                ">= boto3 transfer manager",
                ours_c >= boto,
                "ours includes hashing",
            )
        )
        return figs


def run(ctx: Context) -> list[Figure]:
    bench = S3Bench(ctx)
    try:
        return bench.run()
    finally:
        bench.close()
