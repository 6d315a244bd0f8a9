"""The conditional-write probe: refuse to write to a server that ignores If-None-Match/If-Match.

Apart from the store because it is a one-time check about the *server*, not a Store operation:
some S3-compatible servers accept the conditional headers and silently ignore them, which would
let two writers take the same version number (DESIGN §4). Before a store's first write the
probe creates a probe key twice and swaps it with a wrong etag; both must be refused. The result
is cached per store and per process for a given endpoint/bucket/prefix, so short-lived Resolvers
do not probe again. It talks to the store only through `ProbeTarget`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Protocol

from artifactfs.errors import (
    BackendError,
    ConditionalWritesUnsupportedError,
    PreconditionFailedError,
)
from artifactfs.resolver.backends.s3.errors import is_unsupported

log = logging.getLogger(__name__)

PROBE_PREFIX = "probe-conditional-writes-"
"""Top level, not in a "directory": servers that keep empty directories (SeaweedFS) keep none."""

_probed_ok: set[tuple[str | None, str, str]] = set()
_probed_lock = threading.Lock()


class ProbeTarget(Protocol):
    """What the probe needs of a store: conditional PUTs and a way to clean up."""

    url: str
    where: str

    def conditional_put(self, key: str, data: bytes, **condition: str) -> str: ...

    def already_ours(self, key: str, data: bytes, error: Exception) -> str | None: ...

    def delete(self, key: str) -> None: ...


class ConditionalWriteProbe:
    """Runs the probe at most once per store (and per process for one endpoint/bucket/prefix)."""

    def __init__(self, cache_key: tuple[str | None, str, str]) -> None:
        self._cache_key = cache_key
        self._lock = threading.Lock()
        self._probed = False

    def ensure(self, target: ProbeTarget) -> None:
        """Probe unless this store (or process) already did; raise if the server fails it."""
        if self._probed:
            return
        with _probed_lock:
            if self._cache_key in _probed_ok:
                self._probed = True
                return
        with self._lock:
            if not self._probed:
                probe(target)
                self._probed = True
                with _probed_lock:
                    _probed_ok.add(self._cache_key)


def probe(target: ProbeTarget) -> None:
    """Create a probe key twice and swap it with a wrong etag: both must be refused.

    Three small requests plus a delete; the probe key is a top-level key outside the
    registry's layout, and is always removed."""
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    failures: list[str] = []
    started = time.perf_counter()
    try:
        try:
            target.conditional_put(key, b"probe 1", IfNoneMatch="*")
        except PreconditionFailedError as e:
            if target.already_ours(key, b"probe 1", e) is None:
                failures.append(f"a create-only write of a new key was refused ({e})")
        except BackendError as e:
            if is_unsupported(e):
                failures.append("the server does not implement If-None-Match on PUT")
            else:
                raise
        if not failures:
            _expect_refusal(
                target, key, failures, "If-None-Match: * on an existing key", IfNoneMatch="*"
            )
            _expect_refusal(
                target,
                key,
                failures,
                "If-Match with a wrong etag",
                IfMatch='"00000000000000000000000000000000"',
            )
    finally:
        try:
            target.delete(key)
        except BackendError as e:
            log.warning("could not remove probe key %s: %s", key, e)
    log.debug("conditional-write probe of %s took %.3fs", target.url, time.perf_counter() - started)
    if failures:
        raise ConditionalWritesUnsupportedError(
            f"refusing to write to {target.where}: the server does not enforce conditional "
            f"writes ({'; '.join(failures)}). Without them two writers can take the same "
            "version number or lose an alias update. Use a server that supports "
            "If-None-Match/If-Match on PutObject (AWS S3, MinIO, recent Ceph, SeaweedFS)."
        )


def _expect_refusal(
    target: ProbeTarget, key: str, failures: list[str], what: str, **condition: str
) -> None:
    try:
        target.conditional_put(key, b"probe 2", **condition)
    except PreconditionFailedError:
        return
    except BackendError as e:
        if is_unsupported(e):
            failures.append(f"{what}: not implemented by the server")
            return
        raise
    failures.append(f"{what} was accepted")
