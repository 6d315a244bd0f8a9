"""Progress of this process's backend transfers: what deadlines measure (issue 20).

WHY: a deadline must bound waiting without progress, not the time a large transfer needs. A
50 MiB part on a 2 Mbit/s link takes minutes and is healthy as long as bytes keep arriving; a
frozen server moves nothing and must be given up on after one deadline. So the loops that move
bulk bytes note each chunk here (`moved`), a body read checks that every deadline-long window
brought some bytes (`ProgressWindow`, instead of a wall-clock limit on the whole body), and the
mount's waiter (fusefs/deadline.py) keeps waiting while `last_moved()` is recent. One clock per
process: a reader whose own transfer stalled while another one moves is still bounded by its
socket timeouts and its window, just not cut early by the mount.

A leaf like settings.py: every room may import it.
"""

from __future__ import annotations

import time

from artifactfs.errors import BackendError

MIN_PROGRESS = 16 << 10
"""Bytes a body must bring per deadline-long window: less is a trickle, treated as a stall
(16 KiB per window: 160 kbit/s brings that in under a second)."""

_last = 0.0


def moved(_n: int = 0) -> None:
    """Bytes of a backend transfer moved now (a float store: atomic, no lock needed)."""
    global _last
    _last = time.monotonic()


def last_moved() -> float:
    """time.monotonic() of the last bytes moved (0.0: never)."""
    return _last


class ProgressWindow:
    """Fails a transfer that brings under `min_bytes` in any `seconds`-long window."""

    def __init__(self, seconds: float, what: str, min_bytes: int = MIN_PROGRESS) -> None:
        self.seconds = seconds
        self.what = what
        self.min_bytes = min_bytes
        self.total = 0
        self._start = time.monotonic()
        self._bytes = 0

    def add(self, n: int) -> None:
        """`n` more bytes arrived; raise BackendError when the window that just closed was a
        stall."""
        self.total += n
        self._bytes += n
        now = time.monotonic()
        if n:
            moved()
        if now - self._start > self.seconds:
            if self._bytes < self.min_bytes:
                raise BackendError(
                    f"{self.what}: stalled after {self.total} bytes (under {self.min_bytes} "
                    f"bytes in {self.seconds:.1f}s)"
                )
            self._start, self._bytes = now, 0
