"""Size accounting and least-recently-used eviction over the cache directory.

The directory itself is the index: every cached file's last use is the mtime of its seal (or its
own, for a file without one; hits refresh it, see `Toucher` and layout.CacheFiles.touch), so any
number of processes share one LRU order without a database that could go stale or corrupt. A
file and its seal (`<file>.seal-<fingerprint>`, seals.py) are one entry: counted as the file,
evicted together; a seal of another fingerprint (stale) or of no file is removed. Pruning scans, sorts by mtime and unlinks the oldest files until the total is
under the target, holding an flock so two processes do not prune at once. Unlinking a file that
another process has open is harmless on Linux: its reader keeps the bytes until it closes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from artifactfs.cache.filllock import FillLocks
from artifactfs.cache.locks import file_lock
from artifactfs.cache.seals import fingerprint, split_seal

log = logging.getLogger(__name__)

STALE_TMP_SECONDS = 3600.0
"""Temporary files older than this belong to a crashed fill and are removed when pruning."""


@dataclass(frozen=True)
class CachedFile:
    path: str
    size: int
    mtime: float
    is_block: bool
    seals: tuple[str, ...] = ()
    """Its seal files (normally one; none for an unsealed file)."""


@dataclass(frozen=True)
class CacheInfo:
    """What is on disk: `bytes` in `objects` whole objects plus `blocks` blocks of big ones."""

    root: str
    bytes: int
    objects: int
    blocks: int
    block_keys: int
    limit: int

    def as_dict(self) -> dict[str, int | str]:
        return {
            "root": self.root,
            "bytes": self.bytes,
            "objects": self.objects,
            "blocks": self.blocks,
            "block_keys": self.block_keys,
            "limit": self.limit,
        }


ORPHAN_SEAL_SECONDS = 60.0
"""A seal without its file, or of another fingerprint than its file's, is removed after this
(a filler renames the file first and seals it right after; a discard unlinks the file first)."""


def _walk(top: str, is_block: bool, out: list[CachedFile], orphans: list[str]) -> None:
    try:
        it = os.scandir(top)
    except (FileNotFoundError, NotADirectoryError):
        return
    files: dict[str, os.stat_result] = {}
    seals: dict[str, list[tuple[str, os.stat_result, object]]] = {}
    with it:
        for entry in it:
            try:
                if entry.is_dir(follow_symlinks=False):
                    _walk(entry.path, is_block, out, orphans)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    split = split_seal(entry.path)
                    if split is None:
                        files[entry.path] = st
                    else:
                        seals.setdefault(split[0], []).append((entry.path, st, split[1]))
            except FileNotFoundError:
                continue  # removed by another process while we looked
    cutoff = time.time() - ORPHAN_SEAL_SECONDS
    for path, st in files.items():
        mine = seals.pop(path, [])
        fp = fingerprint(st)
        current = tuple(p for p, _, sfp in mine if sfp == fp)
        mtime = max([st.st_mtime] + [s.st_mtime for p, s, _ in mine if p in current])
        out.append(CachedFile(path, st.st_size, mtime, is_block, current))
        orphans.extend(p for p, s, sfp in mine if sfp != fp and s.st_mtime < cutoff)
    for mine in seals.values():
        orphans.extend(p for p, s, _ in mine if s.st_mtime < cutoff)


def scan(objects_dir: Path, blocks_dir: Path, orphans: list[str] | None = None) -> list[CachedFile]:
    """Every cached file (whole objects and blocks), in no particular order; seals left
    without their file, or stale, are appended to `orphans`."""
    out: list[CachedFile] = []
    lost: list[str] = [] if orphans is None else orphans
    _walk(str(objects_dir), False, out, lost)
    _walk(str(blocks_dir), True, out, lost)
    return out


def summarize(files: list[CachedFile], root: Path, limit: int) -> CacheInfo:
    block_keys = {os.path.dirname(f.path) for f in files if f.is_block}
    blocks = sum(1 for f in files if f.is_block)
    return CacheInfo(
        root=str(root),
        bytes=sum(f.size for f in files),
        objects=len(files) - blocks,
        blocks=blocks,
        block_keys=len(block_keys),
        limit=limit,
    )


def _remove_stale_tmp(tmp_dir: Path) -> None:
    cutoff = time.time() - STALE_TMP_SECONDS
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass


def prune(
    root: Path,
    objects_dir: Path,
    blocks_dir: Path,
    tmp_dir: Path,
    target_bytes: int,
    *,
    blocking: bool = True,
    protect: str | None = None,
    fill_locks: FillLocks | None = None,
) -> tuple[int, int, int]:
    """Evict least-recently-used files until at most `target_bytes` remain.

    Returns (files removed, bytes removed, bytes remaining). With `blocking=False` it returns
    at once, removing nothing, if another process is already pruning. `protect` is a file just
    filled for a caller who has not opened it yet: it is never evicted by this call. Stale
    temporary files, seals without files and (with `fill_locks`) fill locks left by killed
    fillers are removed on the way.
    """
    with file_lock(root / ".prune.lock", blocking=blocking) as locked:
        if not locked:
            return 0, 0, -1
        _remove_stale_tmp(tmp_dir)
        if fill_locks is not None:
            fill_locks.remove_stale(STALE_TMP_SECONDS)
        orphans: list[str] = []
        files = scan(objects_dir, blocks_dir, orphans)
        for seal in orphans:
            try:
                os.unlink(seal)
            except FileNotFoundError:
                pass
        total = sum(f.size for f in files)
        removed = removed_bytes = 0
        if total > target_bytes:
            for f in sorted(files, key=lambda f: f.mtime):
                if total <= target_bytes:
                    break
                if f.path == protect:
                    continue
                try:
                    os.unlink(f.path)
                except FileNotFoundError:
                    pass  # another process evicted or replaced it
                else:
                    removed += 1
                    removed_bytes += f.size
                for seal in f.seals:
                    try:
                        os.unlink(seal)
                    except FileNotFoundError:
                        pass
                total -= f.size
                if f.is_block:
                    try:
                        os.rmdir(os.path.dirname(f.path))  # last block of a key gone
                    except OSError:
                        pass
        if removed:
            log.info("cache %s: evicted %d files (%d bytes)", root, removed, removed_bytes)
        return removed, removed_bytes, total


class Toucher:
    """Marks files as recently used (their mtime), in batches, at most once per `interval`.

    WHY batched: a cold epoch over 20k small cached files used to touch each file's seal from
    the FUSE thread serving its read: a utime per file, i.e. a metadata write and, with the
    inode cache cold, an inode read (11 % of the mount's Python time in that pass, profiled;
    issue 23). A use is now recorded in memory with its time, and one background thread writes
    the recorded times every `FLUSH_SECONDS`; a prune in this process (accounting.py) and the
    process's exit flush first. LRU order is unchanged (each file gets the time it was used);
    only its visibility to *other* processes lags by up to `FLUSH_SECONDS`, so a prune elsewhere
    may take a file used in the last seconds for older than it is: its readers keep their open
    fds' bytes, and the next open fetches it again. Never a wrong byte.
    """

    def __init__(self, interval: float = 60.0, max_entries: int = 65536) -> None:
        self.interval = interval
        self.max_entries = max_entries
        self._last: dict[str, float] = {}
        self._pending: dict[str, int] = {}
        """path -> when it was used (time_ns), not written yet"""
        self._lock = threading.Lock()
        _flusher.add(self)

    def touch(self, path: str) -> None:
        """Record that `path` was used now (written by the next flush)."""
        if self.due(path):
            self.record(path)

    def due(self, key: str) -> bool:
        """Whether a use of `key` should be recorded now (not within `interval` of the last);
        if so it counts as recorded. Lets a caller skip working out what to touch."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        with self._lock:
            if len(self._last) >= self.max_entries:
                self._last.clear()
            self._last[key] = now
        return True

    def record(self, path: str) -> None:
        """Write `path`'s mtime as now, with the next flush."""
        t = time.time_ns()  # nanoseconds: a coarse clock would tie files used one after another
        with self._lock:
            self._pending[path] = t
        _flusher.wake_if_idle()

    def flush(self) -> int:
        """Write every recorded use (files gone meanwhile are skipped); returns how many."""
        with self._lock:
            pending, self._pending = self._pending, {}
        done = 0
        for path, t in pending.items():
            try:
                os.utime(path, ns=(t, t))
                done += 1
            except OSError:  # gone meanwhile, or a read-only cache dir (issue 20): still readable
                pass
        return done

    @property
    def pending(self) -> int:
        return len(self._pending)

    def forget(self, path: str) -> None:
        with self._lock:
            self._last.pop(path, None)
            self._pending.pop(path, None)


FLUSH_SECONDS = 2.0
"""How long a recorded use may wait before it is written (its visibility to other processes)."""


class _Flusher:
    """One daemon thread that flushes every live Toucher every FLUSH_SECONDS while any has
    something pending, and once more at exit."""

    def __init__(self) -> None:
        self._touchers: weakref.WeakSet[Toucher] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush_all)
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A forked child has no flusher thread (only the one that forked runs): start anew."""
        self._lock = threading.Lock()
        self._thread = None

    def add(self, toucher: Toucher) -> None:
        with self._lock:
            self._touchers.add(toucher)

    def wake_if_idle(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="afs-cache-touch", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            if not self.flush_all():
                with self._lock:  # nothing to do: stop until the next touch
                    if not any(t.pending for t in self._touchers):
                        self._thread = None
                        return

    def flush_all(self) -> int:
        with self._lock:
            touchers = list(self._touchers)
        done = 0
        for t in touchers:
            try:
                done += t.flush()
            except OSError as e:  # e.g. a read-only cache: recency is best effort
                log.debug("cannot record cache use: %s", e)
        return done


_flusher = _Flusher()
