"""The mount's answer deadline: backend work runs off the FUSE thread, which waits a bounded time.

WHY: a FUSE callback that waits on the network holds a kernel request, and the process that
asked (an `ls`, a `stat`, a reader) sits in uninterruptible sleep until it is answered. Each
backend request has its own deadline (config.request_budget), but one mount operation may need
several (a project listing reads every collection's versions and aliases; loading a version
reads its record and its manifest), so per-request limits alone would add up. Here every such
operation runs in a worker thread, and the callback waits at most `seconds` for it: then it
answers with what it has (the last good listing) or EIO, and the worker finishes on its own,
bounded by the request deadlines, leaving its result in the caches for the next caller.

The deadline measures progress, not duration (issue 20): while this process's transfers keep
moving bytes (liveness.py), a waiter keeps waiting, so a cold read of a big block on a slow link
is answered when it lands; once nothing has moved for `seconds`, it is answered with EIO.

Work on one key is single-flight: a second caller joins the operation already running instead
of starting another (so a stalled server does not collect a thread per `ls`), and waits only
until that operation's own deadline, so during an outage every caller after the first is
answered at once. After a backend failure, the same question is asked again at once but waited
for only `retry_after` seconds while the failure is recent (younger than the deadline): one user
action often makes several kernel requests for one name (LOOKUP then READLINK; a failed
readahead, then the read itself), and each must not wait a deadline of its own, yet a backend
that is back answers the very next request. Work started from inside a worker runs inline: the
outermost operation owns the deadline.

Workers are reused (`_Workers`): every read the cache cannot answer from a handle comes here, and
starting a thread per call cost each of them a thread start and its handshake with the new
thread under the GIL (profiled: ~15% of a cold block read's Python time). A call still never
queues behind others: with no worker idle, a new one starts, so work stalled on a hung server
delays nobody else; idle workers beyond a few exit after a while.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from artifactfs.errors import BackendError
from artifactfs.liveness import last_moved

T = TypeVar("T")

_inside = threading.local()


class DeadlineExceeded(BackendError):
    """The backend did not answer a mount operation within the mount's deadline."""


class _Flight(Generic[T]):
    """One running operation: its worker's result or exception, and when it started."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.ended = 0.0


class _Workers:
    """Threads that run one job at a time and wait for the next; a job never waits for a
    worker (a new one starts when none is idle). Idle workers above `keep` exit after
    `linger` seconds without a job."""

    def __init__(self, keep: int = 4, linger: float = 10.0) -> None:
        self.keep = keep
        self.linger = linger
        self._cond = threading.Condition(threading.Lock())
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._idle = 0
        self._count = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.append(job)
            if self._idle > len(self._jobs) - 1:
                self._cond.notify()
                return
            self._count += 1
        threading.Thread(target=self._loop, name="afs-backend", daemon=True).start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._idle += 1
                    woken = self._cond.wait(self.linger)
                    self._idle -= 1
                    if not woken and not self._jobs and self._count > self.keep:
                        self._count -= 1
                        return
                job = self._jobs.popleft()
            job()  # never raises (Deadlines._run hands every exception to its waiters)


class Deadlines:
    """Runs backend work under a deadline of `seconds` (single-flight per key)."""

    def __init__(self, seconds: float, retry_after: float = 1.0) -> None:
        self.seconds = seconds
        self.retry_after = min(retry_after, seconds)
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[Any]] = {}
        self._failed: dict[Hashable, _Flight[Any]] = {}
        self._workers = _Workers()

    def call(
        self,
        key: Hashable,
        work: Callable[[], T],
        what: str = "backend operation",
        failure_key: Hashable | None = None,
    ) -> T:
        """`work()`'s result, or DeadlineExceeded when it (or the same work already running
        for `key`) has not finished `seconds` after it started; its exceptions propagate.
        A backend failure is remembered under `failure_key` (default `key`): reads of one file
        at different offsets are different work, but share one failure."""
        if getattr(_inside, "active", False):
            return work()
        fkey = key if failure_key is None else failure_key
        wait = self.seconds
        job = None
        with self._lock:
            failed = self._failed.get(fkey)
            if failed is not None:
                if time.monotonic() - failed.ended < self.seconds:
                    wait = self.retry_after
                else:
                    del self._failed[fkey]
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
                job = functools.partial(self._run, key, fkey, flight, work)
        if job is not None:
            self._workers.submit(job)
        give_up = min(flight.started + self.seconds, time.monotonic() + wait)
        while not flight.done.wait(max(0.0, give_up - time.monotonic())):
            # Out of time, unless bytes are moving: a transfer that keeps bringing them is
            # waited for (a big block on a slow link), one that stalls is not (liveness.py).
            moving = last_moved() + self.seconds
            if wait == self.seconds and moving > time.monotonic():
                give_up = moving
                continue
            error = DeadlineExceeded(
                f"{what}: no progress from the backend within {self.seconds:g}s"
            )
            self._remember_timeout(fkey, error)
            raise error
        if flight.error is not None:
            raise flight.error
        return flight.value

    def _run(
        self, key: Hashable, fkey: Hashable, flight: _Flight[Any], work: Callable[[], Any]
    ) -> None:
        _inside.active = True  # a worker only ever runs these jobs
        try:
            flight.value = work()
        except BaseException as e:  # handed to every waiter
            flight.error = e
        finally:
            flight.ended = time.monotonic()
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
                if isinstance(flight.error, BackendError):
                    if len(self._failed) > 10_000:
                        self._failed.clear()
                    self._failed[fkey] = flight
                elif flight.error is None:
                    self._failed.pop(fkey, None)
            flight.done.set()

    def _remember_timeout(self, fkey: Hashable, error: DeadlineExceeded) -> None:
        """A caller gave up: later questions for `fkey` wait only `retry_after` while it is
        recent, as after a failure (the kernel's retry of a failed readahead must not wait a
        whole deadline again). The work's own end, success or failure, replaces this."""
        marker: _Flight[Any] = _Flight()
        marker.error, marker.ended = error, time.monotonic()
        marker.done.set()
        with self._lock:
            self._failed.setdefault(fkey, marker)

    def in_flight(self) -> int:
        """Operations still running (some may have been given up on by their callers)."""
        with self._lock:
            return len(self._flights)
