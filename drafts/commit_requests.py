"""Who may change a write dir, and how `artifactfs commit` reaches a running mount.

A running mount keeps drafts in memory (open handles, the overlay index) and writes into them
from FUSE threads, so a second process must never commit or delete a draft behind its back.
The rule is one owner per write dir, enforced with an exclusive `flock` on
`WRITE_DIR/.mount.lock`, held by a mount for its whole life or by a CLI command for the length of
a direct commit. The holder writes `{"pid", "kind", ...}` into the file so others know who it is (a mount adds
its mountpoint, and `"unmounting": true` while it commits on the way out: drafts/unmount.py).

`artifactfs commit` therefore does one of two things:
* no owner: take the lock and commit straight from the write dir;
* a mount owns it: drop a request file into `WRITE_DIR/.requests/`; the mount's request thread
  (polling every 0.1 s, one `listdir`) acknowledges it, commits under each draft's lock (no FUSE
  writer can race the hash and upload), and writes the result next to it. The CLI gives up if
  there is no acknowledgement within a few seconds or the mount's lock disappears.

The request itself is one JSON document (`commit_request` / `parse_commit_request` below, the
two ends kept together); the answer holds each draft's CommitResult and the names not found.

Files, not signals or sockets: a FUSE process's main thread sits in libfuse and cannot run
Python signal handlers, and a file channel needs no port and works with any mountpoint.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactfs.drafts.commit import PRODUCER_MOUNT, CommitResult
from artifactfs.drafts.errors import (
    DraftBusyError,
    DraftError,
    DraftNotFoundError,
    MountRequestTimeout,
)
from artifactfs.drafts.state import DraftOptions, atomic_write

log = logging.getLogger(__name__)

LOCK_FILE = ".mount.lock"
REQUESTS = ".requests"
POLL = 0.1
ACK_TIMEOUT = 10.0


class WriteDirLock:
    """The exclusive owner lock of a write dir (see the module docstring)."""

    def __init__(self, write_dir: Path, kind: str, **info: Any) -> None:
        self.path = write_dir / LOCK_FILE
        self.info: dict[str, Any] = {"kind": kind, **info}
        self.fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to `timeout` seconds; DraftBusyError names the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    holder = lock_holder(self.path.parent) or {}
                    raise DraftBusyError(
                        f"write dir {self.path.parent} is in use by "
                        f"{holder.get('kind', 'another process')} (pid {holder.get('pid', '?')})"
                    ) from None
                time.sleep(0.05)
        self.fd = fd
        self._publish()

    def note(self, **info: Any) -> None:
        """Tell others more about what the owner is doing (a mount: "unmounting")."""
        self.info.update(info)
        if self.fd is not None:
            self._publish()

    def _publish(self) -> None:
        assert self.fd is not None
        data = json.dumps({"pid": os.getpid(), **self.info}).encode()
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> WriteDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(write_dir: Path) -> dict[str, Any] | None:
    """Who owns the write dir right now ({"pid", "kind"}), or None if nobody does."""
    path = write_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return json.loads(os.pread(fd, 4096, 0) or b"{}") or {"kind": "unknown"}
            except ValueError:
                return {"kind": "unknown"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


Report = Callable[[dict[str, Any]], None]
"""How the owner tells the waiting CLI how far it got (`{"draft", "done", "total"}`)."""
PROGRESS_EVERY = 0.2


class RequestServer:
    """The mount side: answer request files with `handler(request, report) -> result` on a
    thread; `report(progress)` leaves `{rid}.prog` for the CLI's progress bar."""

    def __init__(
        self, write_dir: Path, handler: Callable[[dict[str, Any], Report], dict[str, Any]]
    ):
        self.dir = write_dir / REQUESTS
        self.handler = handler
        self._stop = threading.Event()
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="draft-requests", daemon=True)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.iterdir():  # answers nobody collected, requests of a dead mount
            with contextlib.suppress(OSError):
                stale.unlink()
        self._thread.start()

    def busy(self) -> bool:
        """Is a request being answered right now?"""
        return self._busy

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            try:
                names = sorted(n for n in os.listdir(self.dir) if n.endswith(".req"))
            except OSError:
                continue
            for name in names:
                self._busy = True
                try:
                    self._serve(self.dir / name)
                finally:
                    self._busy = False

    def _serve(self, path: Path) -> None:
        rid = path.name[: -len(".req")]
        try:
            request = json.loads(path.read_bytes())
            path.unlink()
        except (OSError, ValueError) as e:
            log.warning("dropping unreadable request %s: %s", path.name, e)
            with contextlib.suppress(OSError):
                path.unlink()
            return
        with contextlib.suppress(OSError):
            (self.dir / f"{rid}.ack").touch()
        last = [0.0]

        def report(progress: dict[str, Any]) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY and progress.get("done") != progress.get("total"):
                return
            last[0] = now
            tmp = self.dir / f".{rid}.prog.tmp"
            with contextlib.suppress(OSError):  # no fsync: a progress bar need not survive a crash
                tmp.write_text(json.dumps(progress))
                os.replace(tmp, self.dir / f"{rid}.prog")

        try:
            result = self.handler(request, report)
        except Exception as e:  # answer the CLI, whatever happened
            log.exception("request %s failed", rid)
            result = {"error": str(e)}
        try:
            atomic_write(self.dir / f"{rid}.res", json.dumps(result).encode())
        except OSError as e:
            log.error("cannot answer request %s: %s", rid, e)


def send_request(
    write_dir: Path,
    request: dict[str, Any],
    timeout: float | None = None,
    on_progress: Report | None = None,
) -> Any:
    """The CLI side: hand `request` to the mount that owns `write_dir` and wait for its answer;
    `on_progress` sees each progress report the mount leaves meanwhile."""
    rdir = write_dir / REQUESTS
    rid = uuid.uuid4().hex
    req, ack, res, prog = (rdir / f"{rid}.{ext}" for ext in ("req", "ack", "res", "prog"))
    seen = b""
    rdir.mkdir(parents=True, exist_ok=True)
    tmp = rdir / f".{rid}.tmp"
    tmp.write_text(json.dumps(request))
    os.replace(tmp, req)
    start = time.monotonic()

    def progress() -> None:
        nonlocal seen
        if on_progress is not None:
            with contextlib.suppress(OSError, ValueError):
                data = prog.read_bytes()
                if data != seen:
                    seen = data
                    on_progress(json.loads(data))

    try:
        while not res.exists():
            elapsed = time.monotonic() - start
            if not ack.exists() and elapsed > ACK_TIMEOUT:
                raise MountRequestTimeout(
                    f"the mount owning {write_dir} did not answer within {ACK_TIMEOUT:.0f}s"
                )
            if timeout is not None and elapsed > timeout:
                raise MountRequestTimeout(f"no answer from the mount within {timeout:.0f}s")
            if lock_holder(write_dir) is None:
                raise MountRequestTimeout("the mount went away before answering")
            progress()
            time.sleep(POLL / 2)
        progress()  # the last report, written just before the answer
        return json.loads(res.read_bytes())
    finally:
        for p in (req, ack, res, prog):
            with contextlib.suppress(OSError):
                p.unlink()


@dataclass
class CommitRequest:
    """What `artifactfs commit` asks of the mount: drafts by name (None: all), and how."""

    drafts: list[str] | None
    options: DraftOptions | None
    dry_run: bool = False
    producer: str = PRODUCER_MOUNT


def parse_commit_request(request: dict[str, Any]) -> CommitRequest:
    """The mount's side; ValueError for anything but a commit request."""
    if request.get("op") != "commit":
        raise ValueError(f"unknown request {request.get('op')!r}")
    opts = request.get("options")
    return CommitRequest(
        request.get("drafts"),
        DraftOptions(**opts) if opts else None,
        bool(request.get("dry_run")),
        request.get("producer", PRODUCER_MOUNT),
    )


def commit_request(
    write_dir: Path, request: CommitRequest, on_progress: Report | None = None
) -> list[CommitResult]:
    """The CLI's side: the mount's results; DraftNotFoundError for a name it has no draft of,
    DraftError if it refused."""
    answer = send_request(
        write_dir,
        {
            "op": "commit",
            "drafts": request.drafts,
            "options": None if request.options is None else vars(request.options),
            "dry_run": request.dry_run,
            "producer": request.producer,
        },
        on_progress=on_progress,
    )
    if "error" in answer:
        raise DraftError(f"the mount refused the commit: {answer['error']}")
    for name in answer.get("missing", []):
        raise DraftNotFoundError(f"no draft {name} with changes in {write_dir}")
    return [CommitResult.from_json(r) for r in answer["results"]]
