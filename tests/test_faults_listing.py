"""Issue 14 item 8: listing a collection costs a few requests, whatever the history's length.

Before: `artifactfs ls` of 10,000 versions on S3 took 38.6 s, the mount's `ls` 24 s (a GET per
version record). Now the listing index (resolver/registry/listing.py) answers from pages of 250
records; bench/bench_listing.py measures 10,000 versions on SeaweedFS. Here: the request count
of listings small and large, and the index's consistency rules: a lagging index (a crashed
writer) misses no version, a crashed update (deletion) lists no phantom, a collection from
before the index still lists and gets its pages on the next commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from mountutil import commit_files, mounted, open_registry

from artifactfs.resolver import keys
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry
from artifactfs.resolver.registry.listing import PAGE, VersionListing

pytestmark = pytest.mark.fuse

VERSIONS = 2 * PAGE + 100  # three pages, the last one partial


class Counting:
    """A store proxy counting requests by method."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if callable(attr) and name in ("get", "head", "list", "list_children", "get_range"):

            def counted(*a: Any, **kw: Any) -> Any:
                self.calls[name] += 1
                return attr(*a, **kw)

            return counted
        return attr


def _synthesize(registry: Registry, first: VersionRecord, count: int) -> None:
    """Versions 1..count-1 of `first`'s collection, written as records directly (a real commit
    each would take minutes on S3), then the index pages built as a writer builds them for a
    collection from before the index."""
    base = json.loads(first.to_bytes())
    store = registry.store

    def create(n: int) -> None:
        store.create(
            keys.version_key(first.entity, first.project, first.name, n),
            json.dumps({**base, "version": n, "id": f"{n:032x}"}).encode(),
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(1, count)))
    last = registry.version(first.entity, first.project, first.name, count - 1)
    VersionListing(store).add(last)


def _listing_requests(registry: Registry, name: str) -> tuple[list[int], int]:
    counting = Counting(registry.store)
    registry.store = counting  # type: ignore[assignment]
    try:
        numbers = registry.version_numbers("acme", "proj", name)
    finally:
        registry.store = counting._inner
    return numbers, sum(counting.calls.values())


def test_listing_costs_a_few_requests_whatever_the_history(registry_url, tmp_path):
    res = open_registry(registry_url)
    reg = res.registry
    first = commit_files(reg, tmp_path, "big", {"f.txt": b"one file"})
    commit_files(reg, tmp_path, "small", {"a.txt": b"a"})
    commit_files(reg, tmp_path, "small", {"a.txt": b"b"})
    _synthesize(reg, first, VERSIONS)

    small, small_requests = _listing_requests(reg, "small")
    big, big_requests = _listing_requests(reg, "big")
    assert small == [0, 1] and big == list(range(VERSIONS))
    print(f"\nlisting requests: 2 versions {small_requests}, {VERSIONS} versions {big_requests}")
    assert small_requests <= 3, "a page and the miss that ends the collection"
    assert big_requests <= 3 + 3, f"{VERSIONS} versions: pages, not records ({big_requests})"

    # the CLI and the mount see all of them
    out = subprocess.run(
        [sys.executable, "-m", "artifactfs", "ls", "acme/proj/big"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"{VERSIONS} version(s)" in out and f"big:v{VERSIONS - 1}" in out
    with mounted(tmp_path / "mnt", registry=registry_url) as m:
        names = os.listdir(m.path / "acme" / "proj")
        assert sum(n.startswith("big:v") for n in names) == VERSIONS
        mtimes = {os.stat(m.path / "acme" / "proj" / f"big:v{n}").st_mtime for n in range(VERSIONS)}
        assert len(mtimes) == 1  # `ls -l`: every version's record, no manifest needed
    res.close()


def test_lagging_index_and_crashed_updates_neither_miss_nor_invent(registry_url, tmp_path):
    """The index is a cache the readers never over-trust (docs/SEMANTICS.md, listing index)."""
    res = open_registry(registry_url)
    reg = res.registry
    records = [commit_files(reg, tmp_path, "ds", {"f.txt": f"v{i}".encode()}) for i in range(4)]
    assert reg.version_numbers("acme", "proj", "ds") == [0, 1, 2, 3]

    # a writer that crashed after its commit point, before its index update: v4 and v5 exist
    base = json.loads(records[-1].to_bytes())
    for n in (4, 5):
        reg.store.create(
            keys.version_key("acme", "proj", "ds", n),
            json.dumps({**base, "version": n, "id": f"{n:032x}"}).encode(),
        )
    assert reg.version_numbers("acme", "proj", "ds") == [0, 1, 2, 3, 4, 5]

    # a deletion that crashed after tombstoning the record, before settling its page copy
    victim = reg.version("acme", "proj", "ds", 1)
    VersionListing(reg.store).begin_update(victim)
    victim.state = "DELETED"
    reg.store.swap(keys.version_key("acme", "proj", "ds", 1), victim.to_bytes(), victim.etag)
    assert reg.version_numbers("acme", "proj", "ds") == [0, 2, 3, 4, 5], "no phantom v1"

    # an ordinary edit and delete keep the index settled; the next commit fills the lag
    reg.delete_version(reg.version("acme", "proj", "ds", 2))
    after = commit_files(reg, tmp_path, "ds", {"f.txt": b"v6"})
    assert after.version == 6
    assert reg.version_numbers("acme", "proj", "ds") == [0, 3, 4, 5, 6]
    page = json.loads(reg.store.get(keys.version_page_key("acme", "proj", "ds", 0))[0])
    assert sorted(map(int, page["records"])) == list(range(7)), "holes filled"
    assert list(page["unsettled"]) == ["1"], "only the crashed update's token is left"
    res.close()


def test_collection_from_before_the_index_lists_and_gets_pages(registry_url, tmp_path):
    res = open_registry(registry_url)
    reg = res.registry
    for i in range(3):
        commit_files(reg, tmp_path, "old", {"f.txt": f"{i}".encode()})
    for key in list(reg.store.list("registry/acme/proj/old/index/")):
        reg.store.delete(key)  # as written by a version without the listing index
    assert reg.version_numbers("acme", "proj", "old") == [0, 1, 2]
    commit_files(reg, tmp_path, "old", {"f.txt": b"new"})
    assert reg.version_numbers("acme", "proj", "old") == [0, 1, 2, 3]
    _, requests = _listing_requests(reg, "old")
    assert requests <= 3
    res.close()
