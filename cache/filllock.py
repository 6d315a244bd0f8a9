"""Cross-process fill locks: one download of a key (or of one block) at a time on this machine.

WHY: two processes that miss the same 512 MiB object (two `download()`s, two mounts streaming
one file) each fetched it: 2x the bytes from the backend. Correctness never needed a lock (fills
are private temporary files renamed into place; identical keys hold identical bytes), but
bandwidth does. The first process to miss takes an flock on `locks/<name>`; the others wait for
it and then find the object cached.

A waiter must never wait forever, nor read a partial fill as complete:
- A filler that dies (even kill -9) loses its flock with its last fd: the kernel releases it, the
  next waiter gets the lock within a poll interval and fills the key itself. The dead filler's
  temporary file is named in the lock file (`record`), so the new holder removes it: nothing is
  orphaned. Nobody ever reads another process's temporary file: only renamed, verified files are
  served (and sealed, seals.py).
- A filler that is alive but stuck (SIGSTOP, a hung backend past its deadline) stops refreshing
  the lock file's mtime (`beat`, at most every `BEAT_SECONDS`, from its write loop). A waiter
  that sees no beat for `stall_seconds` gives up waiting and fills the key itself, without the
  lock (a duplicate fetch rather than a hang).
- Lock files are removed by their holder on release (while still holding the flock); a waiter
  that then holds the flock of an unlinked file notices (its fd's inode is no longer the path's)
  and retries on the new file, so two processes never both believe they hold one lock.

Inside a process, callers hold their per-key thread lock (locks.KeyLocks) first, so threads of
one process queue there and only one of them waits here.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

BEAT_SECONDS = 0.5
STALL_SECONDS = 10.0
"""Default: how long a waiter tolerates a filler that shows no progress before filling itself."""
POLL_MIN, POLL_MAX = 0.005, 0.1
TMP_PREFIXES = (".fill-", ".whole-")


class FillLock:
    """A held fill lock: `beat()` while making progress, `record()` the temporary file."""

    def __init__(self, fd: int, path: str, waited: bool) -> None:
        self.fd = fd
        self.path = path
        self.waited = waited
        """True if another process held the lock first: the key may be cached now."""
        self._last_beat = 0.0
        self._guard = threading.Lock()
        self._released = False

    def beat(self) -> None:
        """Tell waiters the fill is alive and progressing (cheap; call it per chunk or part)."""
        now = time.monotonic()
        if now - self._last_beat < BEAT_SECONDS:
            return
        self._last_beat = now
        with self._guard:
            if not self._released:
                with contextlib.suppress(OSError):
                    os.utime(self.fd)

    def record(self, tmp_path: str) -> None:
        """Name the temporary file being filled, so a successor can remove it if we die."""
        data = tmp_path.encode()
        with self._guard:
            if self._released:
                return
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, data, 0)
            self._last_beat = time.monotonic()

    def release(self) -> None:
        with self._guard:
            if self._released:
                return
            self._released = True
            with contextlib.suppress(FileNotFoundError):
                if _same_file(self.fd, self.path):
                    os.unlink(self.path)  # still holding the flock: nobody can take it meanwhile
            os.close(self.fd)  # releases the flock


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


class FillLocks:
    """The fill locks of one cache directory (`lock_dir`), for fills into `tmp_dir`."""

    def __init__(
        self, lock_dir: Path, tmp_dir: Path, *, stall_seconds: float = STALL_SECONDS
    ) -> None:
        self.lock_dir = lock_dir
        self.tmp_dir = tmp_dir
        self.stall_seconds = stall_seconds

    def path(self, name: str) -> str:
        return str(self.lock_dir / name.replace("/", "-"))

    def acquire(self, name: str, *, wait: bool = True) -> FillLock | None:
        """Take the fill lock `name`.

        Returns the held lock (`waited` says whether another process had it first), or None:
        without `wait`, when it is busy; with `wait`, when its holder showed no progress for
        `stall_seconds` (the caller then fills without the lock)."""
        path = self.path(name)
        started = time.monotonic()
        wall_started = time.time()
        waited = False
        delay = POLL_MIN
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if not wait:
                            os.close(fd)
                            return None
                    waited = True
                    if self._stalled(fd, wall_started):
                        log.warning(
                            "fill of %s by another process shows no progress for %.0f s; "
                            "fetching it here too",
                            name,
                            self.stall_seconds,
                        )
                        os.close(fd)
                        return None
                    time.sleep(delay)
                    delay = min(POLL_MAX, delay * 2)
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, path):
                break
            os.close(fd)  # we locked a file its holder removed on release: take the new one
        if waited:
            log.debug("waited %.2f s for another process's fill of %s", time.monotonic() - started,
                      name)  # fmt: skip
        self._clean_previous(fd, name)
        return FillLock(fd, path, waited)

    @contextlib.contextmanager
    def hold(self, name: str, *, wait: bool = True) -> Iterator[FillLock | None]:
        """`acquire` for the length of a block (yields None when not acquired)."""
        lock = self.acquire(name, wait=wait)
        try:
            yield lock
        finally:
            if lock is not None:
                lock.release()

    def _stalled(self, fd: int, wall_started: float) -> bool:
        try:
            last = max(os.fstat(fd).st_mtime, wall_started)
        except OSError:
            return False
        return time.time() - last > self.stall_seconds

    def _clean_previous(self, fd: int, name: str) -> None:
        """A lock file left with a record means its holder died mid-fill: remove its
        temporary file (only ever a fill's temporary file inside our tmp dir)."""
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            return
        if not data:
            return
        tmp = data.decode(errors="replace")
        if os.path.dirname(tmp) == str(self.tmp_dir) and os.path.basename(tmp).startswith(
            TMP_PREFIXES
        ):
            try:
                os.unlink(tmp)
                log.info("removed %s, left by a fill of %s that did not finish", tmp, name)
            except FileNotFoundError:
                pass
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)

    def remove_stale(self, older_than: float) -> int:
        """Remove lock files nobody holds that are older than `older_than` seconds (left by
        killed fillers nobody came back for), with the temporary files they name."""
        removed = 0
        cutoff = time.time() - older_than
        try:
            entries = list(os.scandir(self.lock_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
                fd = os.open(entry.path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if _same_file(fd, entry.path):
                self._clean_previous(fd, entry.name)
                FillLock(fd, entry.path, False).release()
                removed += 1
            else:
                os.close(fd)
        return removed
