"""Alias symlinks the kernel may cache: watched, and dropped from its cache when they move.

WHY: a loader's paths run through `name:latest/...`, and without FUSE_CAP_CACHE_SYMLINKS the
kernel asks the mount for the symlink's target on every path walk: one READLINK upcall per
file opened, the single largest cost of a warm epoch (measured: 8,043 READLINKs for two epochs
of 4,000 files, bench/RESULTS.md). With the capability the kernel keeps each target like a
file's page. This watcher keeps aliases fresh all the same: every alias answered is re-resolved
every `period` seconds (the mount's `--ttl`, as before), on a thread of its own, and one whose
target changed or vanished is invalidated (`invalidate(path)`), so the next walk asks again.
An alias moved in the registry is therefore seen within about two TTLs instead of one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from artifactfs.fusefs import tree
from artifactfs.fusefs.catalog import Catalog

log = logging.getLogger(__name__)

LIMIT = 4096
"""Aliases watched at most (least recently answered dropped: its target may then stay cached
in the kernel until evicted, so the bound is generous)."""


class AliasWatch:
    """path -> the target last answered, re-checked every `period` seconds (thread-safe)."""

    def __init__(
        self, catalog: Catalog, invalidate: Callable[[list[str]], None], period: float
    ) -> None:
        self.catalog = catalog
        self.invalidate = invalidate
        self.period = max(period, 0.5)
        self._answered: OrderedDict[str, tuple[tree.Alias, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def answered(self, path: str, node: tree.Alias, target: str) -> None:
        """`readlink(path)` just answered `target` (the kernel may now cache it)."""
        with self._lock:
            self._answered[path] = (node, target)
            self._answered.move_to_end(path)
            while len(self._answered) > LIMIT:
                self._answered.popitem(last=False)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="afs-aliases", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.check()
            except Exception:
                log.exception("alias check failed")

    def check(self) -> list[str]:
        """Re-resolve every watched alias; invalidate and forget those that changed."""
        with self._lock:
            items = list(self._answered.items())
        changed = []
        for path, (node, target) in items:
            try:
                now = self.catalog.alias_target(node.entity, node.project, node.name, node.alias)
            except LookupError:  # NotFound: the alias is gone
                now = None
            except OSError as e:  # backend down: keep what the kernel has (last good answer)
                log.debug("alias %s not re-checked: %s", path, e)
                continue
            if now != target:
                changed.append(path)
        if changed:
            with self._lock:
                for path in changed:
                    self._answered.pop(path, None)
            log.info("aliases moved: %s", ", ".join(changed))
            self.invalidate(changed)
        return changed

    def close(self) -> None:
        self._stop.set()
