"""BlobCache: atomic verified fills, corruption handling, LRU, blocks, read-ahead, ENOSPC, races."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from artifactfs.cache import BlobCache, content_key
from artifactfs.cache.blockdigests import BlockDigests
from artifactfs.errors import BackendError, CacheError, DigestMismatchError

KiB = 1 << 10
MiB = 1 << 20


class MemorySource:
    """A BlobSource over bytes that records every call (thread-safe)."""

    def __init__(self, data: bytes, delay: float = 0.0, fail_write_errno: int | None = None):
        self.data = data
        self.delay = delay
        self.fail_write_errno = fail_write_errno
        self.ranges: list[tuple[int, int]] = []
        self.copies = 0
        self.lock = threading.Lock()

    def read_range(self, start: int, length: int) -> bytes:
        with self.lock:
            self.ranges.append((start, length))
        if self.delay:
            time.sleep(self.delay)
        return self.data[start : start + length]

    def copy_to(self, fileobj, progress=None) -> int:
        with self.lock:
            self.copies += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail_write_errno is not None:
            fileobj.write(self.data[: len(self.data) // 2])
            raise OSError(self.fail_write_errno, os.strerror(self.fail_write_errno))
        for i in range(0, len(self.data), 256 * KiB):
            fileobj.write(self.data[i : i + 256 * KiB])
        return len(self.data)


def blob(n: int, seed: int = 0) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n]


def dig(data: bytes, block_size: int) -> BlockDigests:
    """The block digests a commit records for `data`, in blocks of `block_size`."""
    digests = b"".join(
        hashlib.sha256(data[i : i + block_size]).digest() for i in range(0, len(data), block_size)
    )
    return BlockDigests(len(data), block_size, digests)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def visible_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".prune.lock"]


@pytest.fixture
def cache(tmp_path):
    c = BlobCache(tmp_path / "cache", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    yield c
    c.close()


def test_fill_is_atomic_verified_and_hits_need_no_source(cache):
    data = blob(100 * KiB)
    src = MemorySource(data)
    key = content_key(md5(data))
    path = cache.ensure_file(key, len(data), lambda: src, md5(data))
    assert path.read_bytes() == data
    assert list((cache.root / "tmp").iterdir()) == []

    def offline():
        raise BackendError("backend down")

    # Hits never construct a source: cached content is readable with the backend down.
    assert cache.ensure_file(key, len(data), offline, md5(data)) == path
    assert cache.read(key, len(data), 10, 5, offline, md5(data)) == data[10:15]
    assert src.copies == 1
    s = cache.stats()
    assert (s.hits, s.misses, s.bytes_fetched) == (2, 1, len(data))
    assert s.bytes_served == 5


def test_digest_mismatch_on_fill_leaves_nothing(cache):
    data = blob(10 * KiB)
    key = content_key(md5(b"something else"))
    with pytest.raises(DigestMismatchError, match="md5"):
        cache.ensure_file(key, len(data), lambda: MemorySource(data), md5(b"something else"))
    with pytest.raises(DigestMismatchError, match="bytes"):
        cache.ensure_file(key, len(data) + 1, lambda: MemorySource(data), None)
    assert visible_files(cache.root) == []


def test_uncached_miss_with_backend_down_fails_fast(cache):
    def offline():
        raise BackendError("unreachable")

    t0 = time.monotonic()
    with pytest.raises(BackendError):
        cache.read(content_key("ab" * 16), 10, 0, 10, offline)
    with pytest.raises(BackendError):
        cache.read(content_key("cd" * 16), 10 * MiB, 0, 10, offline)
    assert time.monotonic() - t0 < 1.0
    assert visible_files(cache.root) == []


def test_corrupt_cached_file_is_discarded_and_refetched(cache):
    data = blob(50 * KiB)
    key = content_key(md5(data))
    src = MemorySource(data)
    path = cache.ensure_file(key, len(data), lambda: src, md5(data))

    path.write_bytes(data[:-1])  # truncated: wrong size is always detected
    assert cache.read(key, len(data), 0, len(data), lambda: src, md5(data)) == data
    assert src.copies == 2

    path.write_bytes(b"X" + data[1:])  # same size, wrong content: detected when asked to verify
    assert cache.ensure_file(key, len(data), lambda: src, md5(data), verify=True) == path
    assert path.read_bytes() == data
    assert src.copies == 3
    assert cache.stats().corrupt_discarded == 2


def test_lru_eviction_keeps_recently_used(tmp_path):
    cache = BlobCache(tmp_path / "c", 300 * KiB, low_water=1.0)
    datas = [blob(100 * KiB, i) for i in range(4)]
    keys = [content_key(md5(d)) for d in datas]
    for k, d in zip(keys[:3], datas[:3], strict=True):
        cache.ensure_file(k, len(d), lambda d=d: MemorySource(d), md5(d))
        time.sleep(0.01)
    cache.ensure_file(keys[0], len(datas[0]), lambda: MemorySource(b""), md5(datas[0]))  # hit
    time.sleep(0.01)
    cache.ensure_file(keys[3], len(datas[3]), lambda: MemorySource(datas[3]), md5(datas[3]))
    present = [cache.cached_path(k) is not None for k in keys]
    assert present == [True, False, True, True]
    info = cache.info()
    assert info.bytes <= 300 * KiB and info.objects == 3 and info.limit == 300 * KiB
    assert cache.stats().evicted_objects == 1

    result = cache.prune(target_bytes=100 * KiB)
    assert result.removed_objects == 2 and result.remaining_bytes == 100 * KiB
    assert cache.cached_path(keys[3]) is not None  # the most recently used survives


def test_a_use_is_recorded_in_memory_and_written_later_with_its_time(tmp_path):
    """A hit marks its file used without a utime in the reader's thread (a cold epoch paid one
    per file); the batch written later carries the time of use, so LRU order is unchanged."""
    cache = BlobCache(tmp_path / "c", 10 * MiB)
    data = blob(10 * KiB)
    key = content_key(md5(data))
    path = cache.ensure_file(key, len(data), lambda: MemorySource(data), md5(data))
    (seal,) = [p for p in path.parent.iterdir() if ".seal-" in p.name]
    os.utime(seal, ns=(10**9, 10**9))  # long unused
    before = time.time_ns()
    assert cache.cached_path(key) == path  # a hit
    after = time.time_ns()
    assert seal.stat().st_mtime_ns == 10**9  # not written by the reader
    deadline = time.monotonic() + 10
    while seal.stat().st_mtime_ns == 10**9 and time.monotonic() < deadline:
        time.sleep(0.05)  # the background flush
    assert before <= seal.stat().st_mtime_ns <= after
    assert cache.cached_path(key) == path  # still intact: its seal still names it


def test_block_reads_fetch_only_needed_blocks(tmp_path):
    cache = BlobCache(
        tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB,
        readahead_blocks=0,
    )  # fmt: skip
    data = blob(1 * MiB + 123)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data)
    assert (
        cache.read(key, len(data), 300 * KiB, 10, lambda: src, md5(data), digests=dg)
        == data[300 * KiB : 300 * KiB + 10]
    )
    assert src.ranges == [(256 * KiB, 64 * KiB)]
    # a read spanning two blocks fetches exactly those two
    got = cache.read(key, len(data), 127 * KiB, 2 * KiB, lambda: src, md5(data), digests=dg)
    assert got == data[127 * KiB : 129 * KiB]
    assert src.ranges[1:] == [(64 * KiB, 64 * KiB), (128 * KiB, 64 * KiB)]
    # the short last block, and reads past the end
    assert cache.read(key, len(data), len(data) - 50, 500, lambda: src, digests=dg) == data[-50:]
    assert src.ranges[-1] == (16 * 64 * KiB, 123)
    assert cache.read(key, len(data), len(data), 10, lambda: src, digests=dg) == b""
    n = len(src.ranges)
    assert (
        cache.read(key, len(data), 300 * KiB, 10, lambda: src, digests=dg)
        == data[300 * KiB : 300 * KiB + 10]
    )
    assert len(src.ranges) == n and src.copies == 0
    assert not cache.path_for(key).exists()  # only blocks, no whole object


def test_ensure_file_reuses_cached_blocks_and_verifies(cache):
    data = blob(1 * MiB)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data)
    cache.read(key, len(data), 0, 100, lambda: src, digests=dg)  # block 0 (+ read-ahead of block 1)
    cache.wait_prefetch()
    fetched = {start for start, _ in src.ranges}
    path = cache.ensure_file(key, len(data), lambda: src, md5(data))
    assert path.read_bytes() == data and src.copies == 0
    starts = [start for start, _ in src.ranges]
    assert len(starts) == len(set(starts)) == 16  # every block fetched exactly once in total
    assert fetched < set(starts)
    assert not cache.block_dir(key).exists()  # blocks dropped once the whole object is in place
    # a whole object present serves range reads without touching the source
    assert cache.read(key, len(data), 5, 5, lambda: 1 / 0) == data[5:10]


def test_sequential_reads_prefetch_ahead(tmp_path):
    cache = BlobCache(
        tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB,
        readahead_blocks=4, prefetch_workers=2,
    )  # fmt: skip
    data = blob(2 * MiB)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data, delay=0.002)
    out = bytearray()
    for off in range(0, len(data), 32 * KiB):
        out += cache.read(key, len(data), off, 32 * KiB, lambda: src, digests=dg)
    cache.wait_prefetch()
    assert bytes(out) == data
    s = cache.stats()
    assert s.blocks_prefetched > 16  # most blocks came from read-ahead
    assert s.blocks_fetched == 32 and s.bytes_fetched == len(data)  # nothing fetched twice
    cache.close()


def test_random_reads_do_not_prefetch(tmp_path):
    cache = BlobCache(tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    data = blob(4 * MiB)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data)
    for off in (3 * MiB, 1 * MiB, 2 * MiB + 5, 200 * KiB):
        assert (
            cache.read(key, len(data), off, 100, lambda: src, digests=dg) == data[off : off + 100]
        )
    cache.wait_prefetch()
    assert cache.stats().blocks_prefetched == 0
    assert len(src.ranges) == 4


def test_threads_asking_for_one_key_download_it_once(cache):
    data = blob(200 * KiB)
    src = MemorySource(data, delay=0.05)
    key = content_key(md5(data))
    results: list[bytes] = []

    def reader():
        results.append(cache.read(key, len(data), 0, len(data), lambda: src, md5(data)))

    threads = [threading.Thread(target=reader) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [data] * 16
    assert src.copies == 1

    big = blob(1 * MiB, 7)
    bsrc = MemorySource(big, delay=0.02)
    bkey = content_key(md5(big))
    threads = [
        threading.Thread(target=lambda: cache.read(bkey, len(big), 0, 64 * KiB, lambda: bsrc))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.wait_prefetch()
    starts = [s for s, _ in bsrc.ranges]
    assert len(starts) == len(set(starts))  # no block fetched twice


def _process_worker(root: str, seed_list: list[int], out: multiprocessing.Queue) -> None:
    cache = BlobCache(root, 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    ok = True
    for seed in seed_list:
        size = 600 * KiB if seed % 2 else 100 * KiB
        data = blob(size, seed)
        key = content_key(md5(data))
        src = MemorySource(data, delay=0.001)
        got = cache.read(key, size, 0, size, lambda src=src: src, md5(data))
        path = cache.ensure_file(key, size, lambda src=src: src, md5(data))
        ok = ok and got == data and path.read_bytes() == data
    cache.close()
    out.put(ok)


def test_processes_filling_same_and_different_keys(tmp_path):
    root = str(tmp_path / "shared")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    # every process fills keys 0-3 (shared, small and blocked) plus one key of its own
    procs = [
        ctx.Process(target=_process_worker, args=(root, [0, 1, 2, 3, 10 + i], out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert results == [True] * 4
    cache = BlobCache(root)
    assert list((Path(root) / "tmp").iterdir()) == []
    assert cache.info().objects == 8
    for seed in [0, 1, 2, 3, 10, 11, 12, 13]:
        data = blob(600 * KiB if seed % 2 else 100 * KiB, seed)
        assert cache.ensure_file(content_key(md5(data)), len(data), lambda: 1 / 0, md5(data),
                                 verify=True).read_bytes() == data  # fmt: skip


def test_disk_full_while_filling_cleans_up_and_falls_back(cache):
    data = blob(100 * KiB)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data, fail_write_errno=errno.ENOSPC)
    with pytest.raises(CacheError, match="disk is full") as exc:
        cache.ensure_file(key, len(data), lambda: src, md5(data))
    assert exc.value.errno == errno.ENOSPC
    assert visible_files(cache.root) == []
    # the reader still gets its bytes, straight from the source
    assert cache.read(key, len(data), 10, 20, lambda: src, md5(data), digests=dg) == data[10:30]
    assert cache.stats().direct_reads == 1


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_filesystem(tiny_fs):
    cache = BlobCache(tiny_fs, 100 * MiB, block_size=256 * KiB, block_threshold=1 * MiB)
    data = blob(3 * MiB)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    with pytest.raises(CacheError) as exc:
        cache.ensure_file(key, len(data), lambda: MemorySource(data), md5(data))
    assert exc.value.errno == errno.ENOSPC
    assert visible_files(tiny_fs) == []
    # block reads keep working past the point where the disk fills up
    out = bytearray()
    for off in range(0, len(data), 128 * KiB):
        out += cache.read(key, len(data), off, 128 * KiB, lambda: MemorySource(data), digests=dg)
    cache.wait_prefetch()
    assert bytes(out) == data
    assert cache.stats().direct_reads > 0
    assert list((tiny_fs / "tmp").iterdir()) == []
    cache.close()


def test_invalid_key_rejected(cache):
    with pytest.raises(CacheError):
        cache.path_for("md5/../../etc")


def _span_bytes(spans) -> bytes:
    return b"".join(os.pread(fd, n, pos) for fd, pos, n in spans)


def test_handle_spans_cover_cached_blocks_then_the_whole_object(tmp_path):
    cache = BlobCache(
        tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB,
        readahead_blocks=0,
    )  # fmt: skip
    data = blob(1 * MiB + 123)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data)
    h = cache.open_handle(key, len(data), lambda: src, digests=dg)
    assert h.spans(100 * KiB, 50 * KiB) is None  # nothing cached yet: caller takes the slow path
    cache.read(key, len(data), 100 * KiB, 50 * KiB, lambda: src, md5(data), digests=dg)
    spans = h.spans(100 * KiB, 50 * KiB)  # spans blocks 1 and 2, now cached
    assert len(spans) == 2 and _span_bytes(spans) == data[100 * KiB : 150 * KiB]
    assert h.spans(len(data) - 10, 100) is None  # the last block is not cached
    cache.ensure_file(key, len(data), lambda: src, md5(data))  # assembles, drops the blocks
    tail = h.spans(len(data) - 10, 100)
    assert _span_bytes(tail) == data[-10:] and h.whole
    assert h.spans(len(data), 10) == []
    h.close()
    h2 = cache.open_handle(key, len(data), lambda: src, digests=dg)
    assert h2.whole and _span_bytes(h2.spans(0, 4096)) == data[:4096]
    h2.close()
    cache.close()


def test_handle_made_before_a_small_object_was_cached_serves_it_once_it_is(cache):
    data = blob(1000)  # below block_threshold: only ever cached whole
    key = content_key(md5(data))
    src = MemorySource(data)
    h = cache.open_handle(key, len(data), lambda: src, md5(data))
    assert h.spans(0, 100) is None  # not cached yet: the caller reads through the cache
    cache.read(key, len(data), 0, 100, lambda: src, md5(data))
    assert _span_bytes(h.spans(0, 1000)) == data and h.whole
    h.close()


def test_handle_never_serves_a_wrong_sized_file(cache):
    data = blob(1000)
    key = content_key(md5(data))
    path = cache.path_for(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:500])  # truncated
    h = cache.open_handle(key, len(data), lambda: MemorySource(data))
    assert not h.whole and h.spans(0, 100) is None
    h.close()


class ParallelSource(MemorySource):
    """A remote-like source: asks the cache for parallel sequential reads (the hint)."""

    parallelism = 4


def _stream(h, size: int, step: int = 64 * KiB) -> bytes:
    """Read through a handle like the mount does: spans, or None (then the caller's slow path)."""
    out = []
    for off in range(0, size, step):
        spans = h.spans(off, step)
        assert spans is not None, f"no spans at {off}"
        out.append(_span_bytes(spans))
    return b"".join(out)


def _wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sequential_reader_of_remote_source_gets_a_verified_whole_object(tmp_path):
    cache = BlobCache(tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    data = blob(2 * MiB + 77, seed=5)
    key = content_key(md5(data))
    src = ParallelSource(data)
    h = cache.open_handle(key, len(data), lambda: src, md5(data))
    # the first block comes through the ordinary block path, as for any reader
    cache.read(key, len(data), 0, 64 * KiB, lambda: src, md5(data))
    assert _stream(h, len(data)) == data
    _wait_for(lambda: cache.path_for(key).exists() and not cache._fills)
    assert cache.path_for(key).read_bytes() == data
    assert not cache.block_dir(key).exists()  # superseded by the whole object
    assert not list((tmp_path / "c" / "tmp").iterdir())  # no temporary file left behind
    assert _span_bytes(h.spans(0, 10)) == data[:10]
    assert h.whole  # the handle's fd now names the published object
    h.close()
    cache.close()


def test_whole_fill_honours_the_parallelism_hint_only(tmp_path):
    """A local-like source (no hint) never gets a whole fill: only the blocks it reads."""
    cache = BlobCache(
        tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB,
        readahead_blocks=0,
    )  # fmt: skip
    data = blob(1 * MiB, seed=6)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = MemorySource(data)
    assert cache.whole_fill(key, len(data), lambda: src, md5(data)) is None
    h = cache.open_handle(key, len(data), lambda: src, md5(data), digests=dg)
    for off in range(0, 512 * KiB, 64 * KiB):
        if h.spans(off, 64 * KiB) is None:
            cache.read(key, len(data), off, 64 * KiB, lambda: src, md5(data), digests=dg)
    assert not cache.path_for(key).exists() and not cache._fills
    assert sum(n for _, n in src.ranges) == 512 * KiB
    h.close()
    cache.close()


def test_random_reader_never_starts_a_whole_fill(tmp_path):
    cache = BlobCache(
        tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB,
        readahead_blocks=0,
    )  # fmt: skip
    data = blob(64 * MiB, seed=7)
    key = content_key(md5(data))
    dg = dig(data, cache.block_size)
    src = ParallelSource(data)
    h = cache.open_handle(key, len(data), lambda: src, md5(data), digests=dg)
    for off in (0, 40 * MiB, 64 * KiB, 20 * MiB, 128 * KiB):
        assert h.spans(off, 4 * KiB) is None  # not cached: the caller reads by block
        cache.read(key, len(data), off, 4 * KiB, lambda: src, md5(data), digests=dg)
    assert not cache._fills and sum(n for _, n in src.ranges) == 5 * 64 * KiB
    h.close()
    cache.close()


def test_whole_fill_with_a_bad_digest_publishes_nothing(tmp_path):
    cache = BlobCache(tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    data = blob(1 * MiB, seed=8)
    key = content_key(md5(data))
    src = ParallelSource(data)
    joined = cache.whole_fill(key, len(data), lambda: src, md5(b"something else"))
    assert joined is not None
    fill, fd = joined
    assert fill.wait(0, len(data))  # readers are served as parts land (unverified, like blocks)
    _wait_for(lambda: not cache._fills)
    assert isinstance(fill.error, DigestMismatchError) and not fill.published
    assert not cache.path_for(key).exists()
    assert not list((tmp_path / "c" / "tmp").iterdir())
    os.close(fd)
    fill.detach()
    cache.close()


def test_reader_that_stops_cancels_the_whole_fill(tmp_path):
    cache = BlobCache(tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    data = blob(8 * MiB, seed=9)
    key = content_key(md5(data))
    src = ParallelSource(data, delay=0.01)
    fill, fd = cache.whole_fill(key, len(data), lambda: src, md5(data))
    assert fill.wait(0, 64 * KiB)
    os.close(fd)
    fill.detach()  # the only reader left before all parts landed
    _wait_for(lambda: not cache._fills)
    assert fill.cancelled and not fill.published and not cache.path_for(key).exists()
    assert not list((tmp_path / "c" / "tmp").iterdir())
    assert sum(n for _, n in src.ranges) < len(data)
    cache.close()


def test_whole_fill_failure_falls_back_to_blocks(tmp_path):
    cache = BlobCache(tmp_path / "c", 100 * MiB, block_size=64 * KiB, block_threshold=256 * KiB)
    data = blob(1 * MiB, seed=10)
    key = content_key(md5(data))
    src = ParallelSource(data[: 512 * KiB])  # truncated remote object: a short part fails it
    fill, fd = cache.whole_fill(key, len(data), lambda: src, md5(data))
    assert not fill.wait(0, len(data))
    _wait_for(lambda: not cache._fills)
    assert fill.error is not None and not cache.path_for(key).exists()
    assert not list((tmp_path / "c" / "tmp").iterdir())
    os.close(fd)
    fill.detach()
    cache.close()
