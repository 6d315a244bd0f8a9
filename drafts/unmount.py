"""What an unmount committed, for whoever waits for it, and how to wait.

The kernel detaches a mount first (`fusermount -u` returns then) and the daemon commits its
drafts afterwards, in `destroy`: a script that runs `fusermount -u mnt; python use_it.py` would
race the commit. The daemon therefore keeps the write dir's owner lock (commit_requests.py)
until its last commit is done, notes in the lock that it is unmounting, and leaves its results
in `WRITE_DIR/.unmount.json`. `artifactfs unmount` and `artifactfs wait` wait on that lock and
print the results, so that both `artifactfs unmount MNT` and `fusermount -u MNT; artifactfs wait`
return only once the new versions exist.

Apart from the workspace so that the waiting side (the CLI, without a resolver) needs nothing
else, and the one file's format sits in one place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactfs.drafts.commit import CommitResult
from artifactfs.drafts.commit_requests import lock_holder
from artifactfs.drafts.ledger import ProgressLog
from artifactfs.drafts.state import atomic_write

log = logging.getLogger(__name__)

REPORT = ".unmount.json"
POLL = 0.05

TERMINAL = {"terminal": True}
"""`extra=` of log records a foreground mount also prints on its terminal (what an unmount
commits and why it takes long); everything else at INFO goes to the mount log only."""


def commit_all(workspace: Any, results: list[CommitResult]) -> None:
    """The unmount's commits (`workspace`: the DraftWorkspace shutting down; not imported,
    it imports this), appended to `results` as they finish, saying on a foreground mount's
    terminal what is committed and why the unmount waits."""
    drafts = []
    for draft in workspace.drafts():
        if workspace.is_home(draft):
            drafts.append(draft)
        else:
            log.info(
                "unmount: draft %s belongs to registry %s: left for `artifactfs commit`",
                draft.qualified_name,
                draft.binding.describe() if draft.binding else "?",
                extra=TERMINAL,
            )
    pending = [d for d in drafts if d.materialized]
    if pending:
        log.info(
            "unmount: committing %d draft(s) before the mount exits: %s",
            len(pending),
            ", ".join(f"{d.qualified_name} ({d.staged_size()} bytes staged)" for d in pending),
            extra=TERMINAL,
        )
    start = time.monotonic()
    for draft in drafts:
        progress = ProgressLog(draft.qualified_name, draft.staged_size(), terminal=True)
        results.append(workspace.commit(draft, progress=progress))
        draft.close()
    if pending:
        log.info("unmount: commits done in %.1fs", time.monotonic() - start, extra=TERMINAL)


@dataclass
class UnmountReport:
    """The commits one daemon made while unmounting."""

    pid: int
    finished: float
    results: list[CommitResult]


def write_report(write_dir: Path, results: list[CommitResult]) -> None:
    """Called by the unmounting daemon, before it gives up the write dir."""
    data = {"pid": os.getpid(), "finished": time.time(), "results": [r.to_json() for r in results]}
    atomic_write(write_dir / REPORT, json.dumps(data).encode())


def read_report(write_dir: Path, pid: int | None = None) -> UnmountReport | None:
    """The last unmount's report; None if there is none (or it is another daemon's than `pid`)."""
    try:
        data: dict[str, Any] = json.loads((write_dir / REPORT).read_bytes())
        report = UnmountReport(
            int(data["pid"]),
            float(data["finished"]),
            [CommitResult.from_json(r) for r in data["results"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if pid is not None and report.pid != pid else report


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_for_owner(
    write_dir: Path,
    pid: int,
    timeout: float,
    on_slow: Callable[[], None] | None = None,
    slow_after: float = 1.0,
) -> bool:
    """Wait until process `pid` no longer owns `write_dir` (its commits are done) or is gone;
    `on_slow()` once after `slow_after` seconds. False on timeout."""
    start = time.monotonic()
    told = False
    while True:
        holder = lock_holder(write_dir)
        if holder is None or holder.get("pid") != pid or not _alive(pid):
            return True
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            return False
        if not told and elapsed >= slow_after and on_slow is not None:
            on_slow()
            told = True
        time.sleep(POLL)
