"""Many writers, one collection, one bucket: versions and aliases coordinated only by S3's
conditional writes (DESIGN §4), against a real SeaweedFS server.

8 processes x 25 commits of distinct contents -> 200 distinct versions v0..v199, `latest` on
v199, and every process's own alias (moved by compare-and-swap on each of its commits) ends on
that process's last version: no alias update is lost.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import uuid
from pathlib import Path

import pytest

PROCESSES = 8
COMMITS = 25

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def _writer(url: str, env: dict[str, str], workdir: str, i: int) -> None:
    os.environ.update(env)
    from artifactfs.resolver.backends.s3 import S3Store
    from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
    from artifactfs.resolver.registry import Registry
    from artifactfs.settings import Config

    config = Config(registry=url, s3_endpoint_url=env["ARTIFACTFS_S3_ENDPOINT_URL"], retries=10)
    registry = Registry(S3Store.from_url(url, config))
    results = []
    for j in range(COMMITS):
        path = Path(workdir) / f"p{i}-c{j}.bin"
        path.write_bytes(f"process {i} commit {j} {uuid.uuid4()}".encode())
        entry = ManifestEntry(
            "data.bin", md5_b64_of_file(str(path)), path.stat().st_size, local_path=str(path)
        )
        record = registry.commit(
            "acme", "proj", "shared", "dataset", Manifest([entry]), aliases=[f"p{i}"]
        )
        results.append(record.version)
    Path(workdir, f"result-{i}.json").write_text(json.dumps(results))


def test_eight_processes_two_hundred_commits(s3_env, tmp_path):
    from artifactfs.resolver.backends.s3 import S3Store
    from artifactfs.resolver.registry import Registry
    from artifactfs.settings import Config

    bucket = s3_env.create_bucket(f"conc-{uuid.uuid4().hex[:12]}")
    url = f"s3://{bucket}/team"
    env = {k: os.environ[k] for k in os.environ if k.startswith(("AWS_", "ARTIFACTFS_"))}
    ctx = mp.get_context("spawn")
    started = time.perf_counter()
    procs = [
        ctx.Process(target=_writer, args=(url, env, str(tmp_path), i)) for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    elapsed = time.perf_counter() - started
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    print(f"\n{PROCESSES}x{COMMITS} commits on SeaweedFS in {elapsed:.1f}s")

    per_process = [
        json.loads((tmp_path / f"result-{i}.json").read_text()) for i in range(PROCESSES)
    ]
    allocated = sorted(v for versions in per_process for v in versions)
    total = PROCESSES * COMMITS
    assert allocated == list(range(total)), "every commit got its own version, no gaps"

    config = Config(registry=url, s3_endpoint_url=s3_env.endpoint_url)
    registry = Registry(S3Store.from_url(url, config))
    assert registry.version_numbers("acme", "proj", "shared") == list(range(total))
    aliases = registry.aliases("acme", "proj", "shared")
    assert aliases["latest"] == total - 1
    for i, versions in enumerate(per_process):
        assert versions == sorted(versions), "a process's own commits get increasing versions"
        assert aliases[f"p{i}"] == versions[-1], f"alias p{i} lost an update"
    digests = {v.digest for v in registry.versions("acme", "proj", "shared")}
    assert len(digests) == total
