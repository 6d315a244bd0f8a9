"""Warnings about the cache's own trouble, at most once per cause per INTERVAL seconds.

WHY: a full cache disk, a deleted or read-only cache directory are facts about the machine, not
about one block: they used to be logged once per block (hundreds of lines per file, issue 20),
which buries everything else in the mount's log. The first occurrence of a cause is logged at
once; repeats within INTERVAL are counted and the count rides on the next line logged for it.
"""

from __future__ import annotations

import logging
import threading
import time

INTERVAL = 60.0

_lock = threading.Lock()
_last: dict[str, float] = {}
_held: dict[str, int] = {}


def warn(log: logging.Logger, cause: str, msg: str, *args: object) -> bool:
    """Log `msg % args` as a warning unless `cause` was logged less than INTERVAL seconds ago;
    True when it was logged."""
    now = time.monotonic()
    with _lock:
        last = _last.get(cause)
        if last is not None and now - last < INTERVAL:
            _held[cause] = _held.get(cause, 0) + 1
            return False
        _last[cause] = now
        held = _held.pop(cause, 0)
    if held:
        msg += f" ({held} more like it not logged in the last {INTERVAL:g}s)"
    log.warning(msg, *args)
    return True


def reset() -> None:
    """Forget every cause (tests)."""
    with _lock:
        _last.clear()
        _held.clear()
