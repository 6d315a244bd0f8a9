"""LoadOnceCache: the bounded load-once cache behind the mount's and the web page's indexes."""

from __future__ import annotations

import threading
import time

import pytest

from artifactfs.resolver.loadonce import LoadOnceCache


def test_concurrent_askers_load_once_and_the_least_recently_used_is_evicted():
    evicted: list[str] = []
    cache: LoadOnceCache[str, str] = LoadOnceCache(2, evict=evicted.append)
    loads = []

    def slow_load() -> str:
        loads.append(1)
        time.sleep(0.2)
        return "A"

    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get("a", slow_load))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["A"] * 8 and len(loads) == 1
    cache.get("b", lambda: "B")
    cache.get("a", lambda: "never")  # a hit: now b is the least recently used
    cache.get("c", lambda: "C")
    assert evicted == ["B"]
    cache.clear()
    assert sorted(evicted) == ["A", "B", "C"]


def test_a_failed_load_is_not_cached():
    cache: LoadOnceCache[str, int] = LoadOnceCache(4)

    def fail() -> int:
        raise OSError("backend down")

    with pytest.raises(OSError):
        cache.get("k", fail)
    assert cache.get("k", lambda: 7) == 7
