"""The record a long-lived workspace keeps of its commits: counters, recent results, progress.

A mount has no terminal: its commits report through the mount log (one progress line every few
seconds, not per block) and through `MOUNT/.artifactfs/stats.json` (counters and the last
results). Apart from the workspace so that this bookkeeping is one small object it owns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from artifactfs.drafts.commit import CommitResult

log = logging.getLogger(__name__)

KEEP_RESULTS = 20
PROGRESS_EVERY = 2.0
"""Seconds between two progress lines of one commit."""


class ProgressLog:
    """Commit progress for the log: `progress(n)` per uploaded chunk, a line every few seconds."""

    def __init__(self, name: str, total: int, terminal: bool = False) -> None:
        self.name, self.total, self.done = name, total, 0
        self.terminal = terminal
        """Also on a foreground mount's terminal (an unmount's commits)."""
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now - self.last >= PROGRESS_EVERY:
                self.last = now
                pct = 100.0 * self.done / self.total if self.total else 100.0
                log.info(
                    "committing %s: %.0f%% (%d bytes)",
                    self.name,
                    pct,
                    self.done,
                    extra={"terminal": True} if self.terminal else None,
                )


class ReportedProgress(ProgressLog):
    """ProgressLog that also reports to the `artifactfs commit` waiting for this commit
    (commit_requests.Report), so the command can draw a progress bar."""

    def __init__(self, name: str, total: int, report: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(name, total)
        self.report = report
        report({"draft": name, "done": 0, "total": total})

    def __call__(self, n: int) -> None:
        super().__call__(n)
        self.report({"draft": self.name, "done": self.done, "total": self.total})


class CommitLedger:
    """Counters (commits, failures, copy-ups) and the last results, newest first."""

    def __init__(self) -> None:
        self.commits = 0
        self.commit_failures = 0
        self.copy_ups = 0
        self.last_results: list[dict[str, Any]] = []

    def copied_up(self) -> None:
        self.copy_ups += 1

    def failed(self) -> None:
        self.commit_failures += 1

    def record(self, result: CommitResult) -> None:
        """A commit that did not fail (committed, unchanged, dry-run)."""
        if result.status == "committed":
            self.commits += 1
        self.last_results = [result.to_json(), *self.last_results][:KEEP_RESULTS]

    def as_dict(self) -> dict[str, Any]:
        return {
            "commits": self.commits,
            "commit_failures": self.commit_failures,
            "copy_ups": self.copy_ups,
            "last_results": self.last_results,
        }
