"""Helpers for tests on a real mount: seed a registry, mount it in a subprocess, always unmount.

The mount runs in its own process (`artifactfs mount` in the background, or a runner that wraps
the store with fault injection) so a bug can never deadlock the test process on its own mount.
Teardown always ends with `fusermount3 -u -z`: a stuck mount would break every later test and
every other engineer on the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactfs.cache import BlobCache, content_key
from artifactfs.fusefs.mount import is_mounted
from artifactfs.resolver.manifest import Manifest, ManifestEntry, md5_b64_of_file
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

PY = sys.executable

# Runs a mount in the foreground with the store wrapped: when FAULT_DIR/offline exists every
# store call raises BackendError; FAULT_DIR/delay holds seconds to sleep in blob reads.
RUNNER = r"""
import json, os, sys, time
from artifactfs.errors import BackendError
from artifactfs.resolver.backends import base

fault_dir = os.environ["ARTIFACTFS_TEST_FAULT_DIR"]

def gate(name, fn, slow=False):
    def wrapped(self, *a, **kw):
        if os.path.exists(os.path.join(fault_dir, "offline")):
            raise BackendError(f"test: backend offline ({name})")
        if slow:
            try:
                with open(os.path.join(fault_dir, "delay")) as f:
                    time.sleep(float(f.read() or 0))
            except FileNotFoundError:
                pass
        return fn(self, *a, **kw)
    return wrapped

import artifactfs.resolver.backends as backends
for mod in list(sys.modules.values()):
    pass
import importlib, pkgutil
for info in pkgutil.iter_modules(backends.__path__):
    importlib.import_module(f"artifactfs.resolver.backends.{info.name}")
def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)
for cls in set(all_subclasses(base.Store)):
    for name in ("get", "get_range", "head", "download_to", "list", "list_children"):
        if name in vars(cls):
            setattr(cls, name, gate(name, vars(cls)[name], slow=name in ("get_range", "download_to")))

from artifactfs.fusefs.mount import MountOptions, serve
opts = MountOptions(**json.loads(sys.argv[1]))
sys.exit(serve(opts))
"""


def commit_files(
    registry: Registry,
    tmp: Path,
    name: str,
    files: dict[str, bytes],
    *,
    entity: str = "acme",
    project: str = "proj",
    type_: str = "dataset",
    aliases: tuple[str, ...] = (),
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> VersionRecord:
    """Commit `files` (path -> bytes) as a new version and return its record."""
    stage = tmp / f"stage-{name}-{time.time_ns()}"
    entries = []
    for rel, data in files.items():
        p = stage / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        entries.append(ManifestEntry(rel, md5_b64_of_file(str(p)), len(data), local_path=str(p)))
    return registry.commit(
        entity,
        project,
        name,
        type_,
        Manifest(entries),
        aliases=aliases,
        description=description,
        metadata=metadata,
    )


def open_registry(url: str | None = None, cache_dir: Path | None = None) -> Resolver:
    """A resolver for seeding (no TTL). Pass `cache_dir` outside per-test homes."""
    return Resolver.open(load_config(registry=url, cache_dir=cache_dir), ttl=0)


@dataclass
class Mounted:
    """A live mount in a subprocess."""

    path: Path
    proc: subprocess.Popen[bytes] | None
    log_file: Path
    fault_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def offline(self, on: bool = True) -> None:
        assert self.fault_dir is not None
        flag = self.fault_dir / "offline"
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def delay(self, seconds: float) -> None:
        assert self.fault_dir is not None
        (self.fault_dir / "delay").write_text(str(seconds))

    def stats(self) -> dict[str, Any]:
        """Counters as of now: a stats file of a name never used before is rendered at its
        lookup (`stats.json` itself may be a moment old, fusefs/control.py)."""
        name = f"t{time.monotonic_ns()}.json"
        return json.loads((self.path / ".artifactfs" / "stats.d" / name).read_text())

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


def force_unmount(path: Path) -> None:
    """Best-effort detach; never raises."""
    for tool in ("fusermount3", "fusermount"):
        with contextlib.suppress(OSError):
            subprocess.run([tool, "-u", "-z", str(path)], capture_output=True, timeout=10)
            if not is_mounted(path):
                return


def wait_until(pred, timeout: float = 10.0, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


MOUNT_DEFAULTS: dict[str, Any] = {}
"""Mount options every `mounted()` of the current test gets unless it says otherwise: the
`write_cache_mode` fixture (conftest.py) runs draft tests once per connection mode."""


@contextlib.contextmanager
def mounted(
    mountpoint: Path,
    *,
    registry: str | None = None,
    ttl: float = 1.0,
    faults: bool = False,
    fuse_lib: str = "fuse3",
    threads: bool = True,
    extra_args: dict[str, Any] | None = None,
    timeout: float = 30.0,
    home: Path | None = None,
) -> Iterator[Mounted]:
    """Mount (in a subprocess) for the duration of the block; always unmount afterwards.

    `faults=True` runs the mount through RUNNER so tests can take the backend offline or slow.
    """
    mountpoint.mkdir(parents=True, exist_ok=True)
    log_file = mountpoint.parent / f"{mountpoint.name}.log"
    opts: dict[str, Any] = {
        "mountpoint": str(mountpoint),
        "registry": registry,
        "ttl": ttl,
        "foreground": True,
        "fuse_lib": fuse_lib,
        "threads": threads,
        "log_file": str(log_file),
        **MOUNT_DEFAULTS,
        **(extra_args or {}),
    }
    env = dict(os.environ)
    if home is not None:  # module-scoped mounts run outside the per-test isolated home
        for var, sub in (
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_STATE_HOME", "state"),
        ):
            (home / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(home / sub)
    fault_dir = None
    if faults:
        fault_dir = mountpoint.parent / f"{mountpoint.name}.faults"
        fault_dir.mkdir(exist_ok=True)
        env["ARTIFACTFS_TEST_FAULT_DIR"] = str(fault_dir)
        cmd = [PY, "-c", RUNNER, json.dumps(opts)]
    else:
        cmd = [PY, "-m", "artifactfs.fusefs.mount", "serve", json.dumps(opts)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    m = Mounted(mountpoint, proc, log_file, fault_dir)
    try:
        ok = wait_until(
            lambda: (
                proc.poll() is not None
                or (is_mounted(mountpoint) and (mountpoint / ".artifactfs").exists())
            ),
            timeout,
        )
        if proc.poll() is not None or not ok:
            err = b""
            if proc.poll() is not None:
                _, err = proc.communicate(timeout=5)
            raise RuntimeError(
                f"mount failed: rc={proc.poll()} {err.decode(errors='replace')} {m.log()[-3000:]}"
            )
        yield m
    finally:
        if is_mounted(mountpoint):
            subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True, timeout=30)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        force_unmount(mountpoint)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def fill_cache(n: int, size: int) -> BlobCache:
    """Put `n` distinct objects of `size` bytes into the configured blob cache."""
    config = load_config()
    cache = BlobCache(config.cache_dir, config.cache_size)
    for i in range(n):
        data = bytes([i]) * size

        class Src:
            def copy_to(self, f, progress=None, data=data):
                f.write(data)
                return len(data)

        cache.ensure_file(content_key(hashlib.md5(data).hexdigest()), size, Src)
    return cache
