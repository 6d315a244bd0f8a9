"""fusefs/openfiles.py without a mount: handles by path under no_open. An fd handed to libfuse
is only closed once the thread that handed it out has come back (or is gone), and a handle
feeding a background fill stops feeding it when nobody reads for a while."""

from __future__ import annotations

import threading
import time

from artifactfs.fusefs.openfiles import OpenFiles


class FakeHandle:
    def __init__(self, name: str) -> None:
        self.name = name
        self.whole = True
        self.full = False
        self.cached = True
        self.filling = False
        self.closed = False
        self.fill_stopped = False

    def spans(self, offset: int, size: int):
        assert not self.closed, f"{self.name}: fds used after close"
        return [(99, offset, size)] if self.cached else None

    def stop_fill(self) -> None:
        self.fill_stopped = True

    def close(self) -> None:
        self.closed = True


class FakeIndex:
    def entry(self, i: int) -> str:
        return f"e{i}"

    def path(self, i: int) -> str:
        return f"p{i}"


class FakeView:
    index = FakeIndex()


class FakeResolver:
    def __init__(self) -> None:
        self.made: list[FakeHandle] = []

    def open_handle(self, entry: str) -> FakeHandle:
        self.made.append(FakeHandle(entry))
        return self.made[-1]


def test_evicted_handles_close_only_after_their_thread_replied_again():
    res = FakeResolver()
    files = OpenFiles(res, limit=2)  # type: ignore[arg-type]
    view = FakeView()
    assert files.spans("/a", lambda: (view, 0), 0, 10) == [(99, 0, 10)]  # type: ignore[arg-type]
    a = res.made[0]
    other = threading.Event()
    done = threading.Event()

    def reader() -> None:  # another worker thread reads /b last and then stays idle
        files.spans("/b", lambda: (view, 1), 0, 10)  # type: ignore[arg-type]
        other.set()
        done.wait(5)

    t = threading.Thread(target=reader)
    t.start()
    other.wait(5)
    b = res.made[1]
    files.spans("/c", lambda: (view, 2), 0, 10)  # type: ignore[arg-type]  # evicts /a (this thread's)
    files.spans("/d", lambda: (view, 3), 0, 10)  # type: ignore[arg-type]  # evicts /b (pinned by t)
    assert a.closed  # this thread has moved on from /a's reply
    assert not b.closed  # t's last reply may still be reading /b's fds
    done.set()
    t.join(5)
    files.spans("/c", lambda: (view, 2), 0, 10)  # type: ignore[arg-type]  # t is gone: /b can go
    assert b.closed
    files.close()
    assert all(h.closed for h in res.made)


def test_a_handle_feeding_a_fill_stops_when_nobody_reads():
    res = FakeResolver()
    files = OpenFiles(res)  # type: ignore[arg-type]
    view = FakeView()
    files.spans("/big", lambda: (view, 0), 0, 1 << 20)  # type: ignore[arg-type]
    big = res.made[0]
    big.filling = True
    files.spans("/big", lambda: (view, 0), 1 << 20, 1 << 20)  # type: ignore[arg-type]
    files.retire_idle(time.monotonic() - 60)  # read within the last minute: kept
    assert not big.fill_stopped and len(files) == 1
    files.retire_idle(time.monotonic() + 1)
    assert big.fill_stopped and len(files) == 0
    assert not big.closed  # this thread's last reply used its fds
    files.spans("/small", lambda: (view, 1), 0, 10)  # type: ignore[arg-type]
    assert big.closed
    files.close()


def test_a_handle_without_cached_bytes_is_kept_and_shared():
    """The handle that saw a read at offset 0 sees the next ones too (its sequential-from-0
    detection joins the whole fill), however many threads race for the path's first read."""
    res = FakeResolver()
    made = threading.Barrier(4)

    class Racing(FakeResolver):
        def open_handle(self, entry: str) -> FakeHandle:
            h = res.open_handle(entry)
            h.cached = False
            if len(res.made) <= 4:
                made.wait(5)  # all four threads make one before any of them stores it
            return h

    files = OpenFiles(Racing())  # type: ignore[arg-type]
    view = FakeView()
    readers = [
        threading.Thread(target=files.spans, args=("/big", lambda: (view, 0), i << 20, 1 << 20))
        for i in range(4)
    ]
    for t in readers:
        t.start()
    for t in readers:
        t.join(5)
    kept = [h for h in res.made if not h.closed]
    assert len(res.made) == 4 and len(kept) == 1 and len(files) == 1
    assert files.spans("/big", lambda: (view, 0), 4 << 20, 1 << 20) is None  # type: ignore[arg-type]
    assert len(res.made) == 4  # not cached yet, still the same handle
    kept[0].cached = True
    assert files.spans("/big", lambda: (view, 0), 5 << 20, 1 << 20) == [(99, 5 << 20, 1 << 20)]  # type: ignore[arg-type]
    kept[0].cached, kept[0].full = False, True  # its block fds are all taken: replaced
    files.spans("/big", lambda: (view, 0), 9 << 20, 1 << 20)  # type: ignore[arg-type]
    files.spans("/big", lambda: (view, 0), 9 << 20, 1 << 20)  # type: ignore[arg-type]
    assert len(res.made) == 5
    files.close()
