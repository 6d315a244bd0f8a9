"""A big transfer over a slow, lossy link (issue 20): `put`, `get`, a cold read through a mount
and a commit of a draft, each of SIZE MiB, through SeaweedFS reached from a network namespace
(tests/slowlink.py: tbf at RATE kbit/s both ways, DELAY ms added toward the client, LOSS % of
the client's packets dropped by nft), with the default deadline (30 s). Prints seconds per step
and whether the bytes were right. One run: each step takes minutes at the issue's figures.

    .venv/bin/python bench/bench_slow_link.py [SIZE_MIB RATE_KBIT DELAY_MS LOSS_PCT]
    (default: 50 2000 100 2)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers import SeaweedFS
from slowlink import SlowLink


def main(argv: list[str]) -> int:
    size, rate, delay, loss = (list(map(float, argv)) + [50, 2000, 100, 2][len(argv) :])[:4]
    tmp = Path(tempfile.mkdtemp(prefix="afs-slowlink-"))
    server = SeaweedFS.start(tmp)
    try:
        bucket = server.create_bucket(f"slow-{uuid.uuid4().hex[:8]}")
        data = os.urandom(int(size * (1 << 20)))
        (tmp / "big.bin").write_bytes(data)
        digest = hashlib.md5(data).hexdigest()
        port = urlparse(server.endpoint_url).port or 0
        with SlowLink(port, rate_kbit=int(rate), delay_ms=int(delay), loss_pct=loss) as link:
            env = dict(
                os.environ,
                AWS_ACCESS_KEY_ID=server.access_key,
                AWS_SECRET_ACCESS_KEY=server.secret_key,
                AWS_DEFAULT_REGION="us-east-1",
                ARTIFACTFS_S3_ENDPOINT_URL=link.endpoint_url,
                ARTIFACTFS_REGISTRY=f"s3://{bucket}/reg",
                ARTIFACTFS_CACHE_DIR=str(tmp / "cache"),
                XDG_DATA_HOME=str(tmp / "data"),
                XDG_STATE_HOME=str(tmp / "state"),
            )
            cli = [*link.prefix, sys.executable, "-m", "artifactfs"]

            def step(name: str, *args: str, **kw: str) -> bool:
                t = time.monotonic()
                p = subprocess.run([*cli, *args], env={**env, **kw}, capture_output=True, text=True)
                print(f"{name}: rc={p.returncode} {time.monotonic() - t:.1f}s {p.stderr[-300:]}")
                return p.returncode == 0

            print(f"{size:g} MiB at {rate:g} kbit/s, {delay:g} ms delay, {loss:g} % loss")
            step("put", "put", str(tmp / "big.bin"), "acme/proj/big")
            if step("get", "get", "acme/proj/big:v0", "--root", str(tmp / "got")):
                got = (tmp / "got" / "big.bin").read_bytes()
                print(f"get bytes right: {hashlib.md5(got).hexdigest() == digest}")
            mnt = tmp / "mnt"
            mnt.mkdir()
            mount_env = {**env, "ARTIFACTFS_CACHE_DIR": str(tmp / "cache2")}
            daemon = subprocess.Popen(
                [*cli, "mount", str(mnt), "--foreground"],
                env=mount_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                while not os.path.ismount(mnt):
                    time.sleep(0.1)
                t = time.monotonic()
                try:
                    got = (mnt / "acme/proj/big:v0/big.bin").read_bytes()
                    ok = hashlib.md5(got).hexdigest() == digest
                    print(f"cold mount read: {time.monotonic() - t:.1f}s bytes right: {ok}")
                except OSError as e:
                    print(f"cold mount read: {time.monotonic() - t:.1f}s FAILED {e}")
                (mnt / "acme/proj/big/draft.bin").write_bytes(data[::-1])
                step("commit", "commit", "acme/proj/big", **mount_env)
            finally:
                subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
                daemon.wait(60)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
