"""Background fill of a whole object from a remote source, served to readers while it lands.

WHY: a cold sequential read of a big S3 entry through block read-ahead costs, per 4 MiB block, a
block file, a per-block lock, a re-read of the block into Python when the reader got there first,
and a foreground fetch whenever read-ahead fell behind: ~0.23 GB/s against ~0.6 GB/s for boto3's
`download_file` of the same object. Here the object is fetched part by part (ranged GETs, several
at once, in order) into ONE preallocated temporary file; a reader waits only for the parts its
range overlaps and is then served from that file's fd (libfuse reads it in C). When every part
has landed the file is hashed, checked against the expected MD5 and size, and renamed into
`objects/`: the same inode, so fds handed out meanwhile now name the verified object.

Guarantees kept from the block cache: nothing partial is ever visible under `objects/` (the
temporary file lives in `tmp/` and is removed on failure or cancellation); a part is checked
against the entry's block digests (blockdigests.py) before it counts as landed, so no reader is
served a byte of it before that (handles only join a fill for entries with digests); a failed
fill (source error, short read, a part that does not match, ENOSPC) makes `wait` return False,
so readers fall back to the block path, which checks (and reports) the block again. When every
part was checked against the digests, the final MD5 pass is skipped: the digests, recorded at
commit from the same bytes and named by digest in the version record, already cover every byte.
The published object is sealed (seals.py). One whole fill of a key at a time across processes
(filllock.py): a reader that would start one while another process fills the key waits for it
and reads the published object; a part waits for a block fetch of its range instead of
fetching it twice.
A fill is cancelled when its last reader detaches before all parts landed, so a reader that
stops does not leave a whole download behind it.

Parts are `part_size` bytes and aligned with the cache's blocks, so blocks already cached are
copied in (copy_file_range) instead of fetched again. `WholeFills` keeps this process's fills
by key (wholefills.py), so every sequential reader of one object joins the same fill.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import artifactfs.cache.notices as notices
from artifactfs.cache.blockdigests import BlockDigests
from artifactfs.cache.blocks import NO_SPACE, block_count, block_span
from artifactfs.cache.filllock import FillLock
from artifactfs.cache.source import BlobSource
from artifactfs.errors import BackendError, DigestMismatchError
from artifactfs.liveness import last_moved

log = logging.getLogger(__name__)

HASH_CHUNK = 8 << 20


class FillStalled(BackendError):
    """A reader waited on a background fill that moved nothing for its stall bound (EIO)."""


class WholeFill:
    """One object being downloaded whole into `tmp_dir`, then verified and renamed to `dest`."""

    def __init__(
        self,
        *,
        source: BlobSource,
        size: int,
        md5_hex: str | None,
        dest: Path,
        tmp_dir: Path,
        part_size: int,
        workers: int,
        cached_part: Callable[[int], str | None] = lambda index: None,
        on_done: Callable[[WholeFill], None] = lambda fill: None,
        seal: Callable[[str, os.stat_result, str], None] = lambda path, st, md5: None,
        part_ok: Callable[[str, int, os.stat_result], bool] = lambda path, fd, st: True,
        part_lock: Callable[[int], AbstractContextManager[FillLock | None]] = (
            lambda index: contextlib.nullcontext()
        ),
        lock: FillLock | None = None,
        digests: BlockDigests | None = None,
    ) -> None:
        self.source = source
        self.digests = digests
        self.size = size
        self.md5_hex = md5_hex
        self.dest = dest
        self.part_size = part_size
        self.n_parts = block_count(size, part_size)
        self.workers = max(1, min(workers, self.n_parts))
        self._cached_part = cached_part
        self._on_done = on_done
        self._seal = seal
        self._part_ok = part_ok  # a cached block is intact (its seal): else it is fetched
        self._part_lock = part_lock  # the fill lock of the block a part is (blockreads.py)
        self.lock = lock
        self.fd, self.tmp_path = tempfile.mkstemp(dir=tmp_dir, prefix=".whole-")
        if lock is not None:
            lock.record(self.tmp_path)
        self._landed = bytearray(self.n_parts)
        self._n_landed = 0
        self._next = 0
        self._refs = 0
        self._running = 0
        self._fd_closed = False
        self._cond = threading.Condition()
        self.cancelled = False
        self._progress_at = time.monotonic()
        self.error: BaseException | None = None
        self.published = False
        self.fetched_bytes = 0
        self.reused_parts = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        try:
            os.ftruncate(self.fd, self.size)  # sparse: no space is taken before bytes land
        except OSError as e:
            self._fail(e)
            self._finish()
            return
        with self._cond:
            self._running = self.workers
        for i in range(self.workers):
            threading.Thread(target=self._work, name=f"afs-whole-{i}", daemon=True).start()

    def attach(self) -> int | None:
        """A reader starts using this fill (it keeps going while anyone is attached).

        Returns the reader's own fd on the temporary file (a dup: it stays valid after the
        fill ends, and names the verified object once published), or None when the fill has
        already ended (then the reader uses the cache as usual)."""
        with self._cond:
            if self._fd_closed:
                return None
            self._refs += 1
            return os.dup(self.fd)

    def detach(self) -> None:
        """A reader is done; with none left, an unfinished download is abandoned."""
        with self._cond:
            self._refs -= 1
            abandon = self._refs <= 0 and self._n_landed < self.n_parts
        if abandon:
            self.cancel()

    def cancel(self) -> None:
        with self._cond:
            if self.published or self.error is not None:
                return
            self.cancelled = True
            self._cond.notify_all()

    @property
    def failed(self) -> bool:
        return self.cancelled or self.error is not None

    @property
    def complete(self) -> bool:
        return self._n_landed == self.n_parts

    # -- readers -------------------------------------------------------------------------------
    def ready(self, offset: int, end: int) -> bool:
        """Whether bytes [offset, end) are in the temporary file (no waiting)."""
        if end <= offset:
            return True
        first, last = offset // self.part_size, (min(end, self.size) - 1) // self.part_size
        return all(self._landed[first : last + 1])

    def wait(self, offset: int, end: int, stall: float | None = None) -> bool:
        """Block until bytes [offset, end) landed (True) or the fill failed (False).

        With `stall`, raise FillStalled once neither this fill nor any other transfer of the
        process has moved a byte for `stall` seconds (a frozen server): the reader must answer
        within the mount's deadline, and the fill's own socket timeouts may be longer (they
        let a slow link finish, liveness.py)."""
        with self._cond:
            while not (self.ready(offset, end) or self.failed):
                if stall is not None:
                    quiet = time.monotonic() - max(self._progress_at, last_moved())
                    if quiet > stall:
                        raise FillStalled(
                            f"background fill of {self.dest.name}: no progress in {stall:g}s"
                        )
                self._cond.wait(None if stall is None else min(stall, 0.5))
            return self.ready(offset, end)

    # -- workers -------------------------------------------------------------------------------
    def _take(self) -> int | None:
        with self._cond:
            if self.failed or self._next >= self.n_parts:
                return None
            index, self._next = self._next, self._next + 1
            return index

    def _work(self) -> None:
        try:
            while (index := self._take()) is not None:
                self._fill_part(index)
                with self._cond:
                    self._landed[index] = 1
                    self._n_landed += 1
                    self._progress_at = time.monotonic()
                    self._cond.notify_all()
                if self.lock is not None:
                    self.lock.beat()
        except BaseException as e:  # any failure ends the fill; readers fall back to blocks
            self._fail(e)
        with self._cond:
            self._running -= 1
            last = self._running == 0
        if last:
            self._finish()

    def _fill_part(self, index: int) -> None:
        start, length = block_span(index, self.size, self.part_size)
        self._land_part(index, start, length)
        if self.digests is not None:
            bad = self.digests.bad_block_in_file(self.fd, start, length)
            if bad is not None:
                raise DigestMismatchError(
                    f"part {index} of {self.dest.name} (bytes {start}-{start + length - 1}) does "
                    "not match the digest recorded at commit: the stored object was changed"
                )

    def _land_part(self, index: int, start: int, length: int) -> None:
        block = self._cached_part(index)
        if block is not None and self._copy_block(block, start, length):
            self.reused_parts += 1
            return
        # A block read (read-ahead, here or in another process) may be fetching this very
        # range: wait for it and copy the block rather than fetch the bytes twice.
        with self._part_lock(index) as part_lock:
            if part_lock is not None and part_lock.waited:
                block = self._cached_part(index)
                if block is not None and self._copy_block(block, start, length):
                    self.reused_parts += 1
                    return
            self._fetch_part(index, start, length)

    def _fetch_part(self, index: int, start: int, length: int) -> None:
        into = getattr(self.source, "range_into", None)
        if into is not None:  # the source streams into the file (no bytes object per part)
            got = into(start, length, self.fd)
        else:
            view = memoryview(self.source.read_range(start, length))
            got = 0
            while got < len(view):
                got += os.pwrite(self.fd, view[got:], start + got)
        if got != length:
            raise OSError(
                f"part {index}: source returned {got} bytes, expected {length} "
                f"(object of {self.size} bytes changed or is truncated)"
            )
        with self._cond:
            self.fetched_bytes += length

    def _copy_block(self, path: str, start: int, length: int) -> bool:
        try:
            src = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            st = os.fstat(src)
            if st.st_size != length or not self._part_ok(path, src, st):
                return False
            done = 0
            while done < length:
                n = os.copy_file_range(src, self.fd, length - done, done, start + done)
                if n <= 0:
                    return False
                done += n
            return True
        except OSError as e:
            if e.errno in NO_SPACE:
                raise
            return False
        finally:
            os.close(src)

    def _fail(self, e: BaseException) -> None:
        with self._cond:
            if self.error is None and not self.cancelled:
                self.error = e
                if isinstance(e, OSError) and not isinstance(
                    e, (BackendError, DigestMismatchError)
                ):
                    notices.warn(
                        log, f"fill:{e.errno}", "background fill of %s failed: %s", self.dest, e
                    )
                else:
                    log.warning("background fill of %s failed: %s", self.dest, e)
            self._cond.notify_all()

    # -- the end -------------------------------------------------------------------------------
    def _finish(self) -> None:
        """Verify and publish (all parts landed) or clean up; runs once, in the last worker."""
        try:
            if not self.failed and self.complete:
                self._publish(self._verify())
        except BaseException as e:
            self._fail(e)
        finally:
            with self._cond:
                self._fd_closed = True
                os.close(self.fd)
            if not self.published:
                try:
                    os.unlink(self.tmp_path)
                except FileNotFoundError:
                    pass
            if self.lock is not None:
                self.lock.release()  # after the seal: a waiter then finds a sealed object
            with self._cond:
                self._cond.notify_all()
            self._on_done(self)

    def _verify(self) -> str:
        """The MD5 of the complete file (also when none is expected: the seal records it)."""
        if os.fstat(self.fd).st_size != self.size:
            raise OSError(f"{self.tmp_path} is not {self.size} bytes")
        if self.digests is not None and self.md5_hex is not None:
            return self.md5_hex  # every part was checked against its digest as it landed
        h = hashlib.md5()
        for pos in range(0, self.size, HASH_CHUNK):
            if self.cancelled:
                raise OSError("cancelled")
            h.update(os.pread(self.fd, HASH_CHUNK, pos))
            if self.lock is not None:
                self.lock.beat()  # hashing a big object takes seconds: still progressing
        if self.md5_hex is not None and h.hexdigest() != self.md5_hex:
            raise DigestMismatchError(
                f"fetched object {self.dest.name} has md5 {h.hexdigest()}, expected {self.md5_hex}"
            )
        return h.hexdigest()

    def _publish(self, md5: str) -> None:
        with self._cond:
            if self.cancelled:
                return
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp_path, self.dest)
        self._seal(str(self.dest), os.fstat(self.fd), md5)  # raises (and unlinks) if it cannot
        with self._cond:
            self.published = True
