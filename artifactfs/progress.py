"""Progress bars for long transfers: shown on a terminal, silent when output is piped.

Apart from the CLI so that every command (and any library caller that wants one) draws the same
bar under the same rule: tqdm on stderr only when stderr is a TTY, nothing in a pipe or a log.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(total: int | None, desc: str, unit: str = "B") -> Iterator[Callable[[int], None]]:
    """Yield a thread-safe `advance(n)` callable; draws a bar on stderr only if it is a TTY."""
    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        unit_divisor=1024 if unit == "B" else 1000,
        disable=not interactive(),
        leave=False,
        file=sys.stderr,
    )
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    try:
        yield advance
    finally:
        bar.close()
