"""The kernel's write-back cache for drafts, and a write(2) that costs no upcall.

With FUSE_CAP_WRITEBACK_CACHE the kernel keeps written pages in its page cache and hands them to
the mount in big WRITE requests (up to max_write) when it writes back: on close (FLUSH), fsync,
memory pressure or the flusher. A write(2) of 100 bytes is then a memory copy, as on a local
disk, instead of one round trip to Python each.

That alone is not enough. Before every write(2) the kernel asks whether the file carries
`security.capability` (file_remove_privs: one GETXATTR upcall per write, ~30-60 µs here,
measured) unless the super block is SB_NOSEC, which FUSE sets only when the daemon answers INIT
with FUSE_HANDLE_KILLPRIV_V2 (kernel >= 5.11): "the file system clears suid/sgid/capabilities
itself". libfuse >= 3.17 sends it when asked (FUSE_CAP_HANDLE_KILLPRIV_V2). libfuse 3.14-3.16
(Debian 12: 3.14) do not know that flag and never send it, so `_InitPatch` adds it to the INIT
reply: through libfuse's public fuse_session_custom_io, the first reply
(INIT is always the first) goes through a writev here that sets the bit, and the session then
talks to the kernel through libc's read/writev again, in C. Measured: 100-byte writes 1.2 µs
instead of 15-56 µs (native ext4: 1.1 µs).

What the flag obliges the mount to do, and where it is done (the drafts engine runs as root on
a local file system, so most of it is that file system's own behaviour):
* chown clears suid (and sgid when group-executable): the staging file system does it.
* write by an unprivileged caller clears suid/sgid: the kernel then sends the write through
  (not as a cached page) and flags it; libfuse 3.14 drops the flag, so a write that is not a
  page write-back clears them (draft_ops.write).
* truncate by an unprivileged caller clears them: draft_ops.truncate, by the caller's uid.
* security.capability: drafts refuse security.* xattrs, so there is none to clear.

Crash safety: data written but not yet written back lives in the kernel until close(2) (FLUSH
writes it back first), fsync(2) or the flusher; `kill -9` of the mount loses such pages, never
what close or fsync returned for (docs/SEMANTICS.md).

The cache is connection-wide, and under no_open the mount never sees an open: root (whom a
0444 mode does not stop) can write(2) into a version file's pages, and only the write-back
reaches the mount, which refuses it (EROFS; the writer's close or fsync reports it). Those
pages must not stay, and neither may the size the kernel keeps for a write-back inode (it
trusts its own i_size over the mount's): the mount drops the file's pages and the dentries
above it (operations.forget_inode), so the kernel evicts the inode and the next lookup makes
a fresh one with the version's size and bytes. `Later` runs such notifications from a thread of its own: sent from
inside the write callback they would wait for the very pages being written back.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from artifactfs.fusefs import libfuse_abi
from artifactfs.fusefs.libfuse_abi import (
    CAP_HANDLE_KILLPRIV_V2,
    CAP_WRITEBACK_CACHE,
    KERNEL_HANDLE_KILLPRIV_V2,
    CustomIo,
    InitOutHead,
    Iovec,
)

log = logging.getLogger(__name__)


_NEEDS = ("fuse_session_custom_io", "fuse_get_session", "fuse_session_fd")


class _InitPatch:
    """Sets the kernel's HANDLE_KILLPRIV_V2 in the INIT reply, then steps aside (libfuse
    3.14-3.16 only, see the docstring; the layouts are libfuse_abi's)."""

    def __init__(self, abi: libfuse_abi.LibfuseAbi) -> None:
        found = [abi.function(n) for n in _NEEDS]
        if None in found:
            raise OSError(f"{abi.describe()} lacks one of {', '.join(_NEEDS)}")
        self.custom_io: Any = found[0]
        self.get_session: Any = found[1]
        self.session_fd: Any = found[2]
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.writev.argtypes = [ctypes.c_int, ctypes.POINTER(Iovec), ctypes.c_int]
        self.libc.writev.restype = ctypes.c_ssize_t
        self.plain = CustomIo(
            ctypes.cast(self.libc.writev, ctypes.c_void_p).value,
            ctypes.cast(self.libc.read, ctypes.c_void_p).value,
            None,
            None,
        )
        self.callback = _WRITEV(self._writev)  # kept alive: libfuse holds its address
        self.session: int | None = None
        self.fd = -1
        self.patched = False

    def install(self, fuse: int) -> bool:
        self.session = self.get_session(fuse)
        if not self.session:
            return False
        self.fd = self.session_fd(self.session)
        io = CustomIo(
            ctypes.cast(self.callback, ctypes.c_void_p).value, self.plain.read, None, None
        )
        return bool(self.custom_io(self.session, ctypes.addressof(io), self.fd) == 0)

    def _writev(self, fd: int, iov: Any, count: int, _userdata: Any) -> int:
        if not self.patched:
            self.patched = True
            # iov[0] is the reply header, iov[1] the fuse_init_out of a successful INIT
            if count >= 2 and iov[1].iov_len >= ctypes.sizeof(InitOutHead) and iov[1].iov_base:
                head = InitOutHead.from_address(iov[1].iov_base)
                head.flags |= KERNEL_HANDLE_KILLPRIV_V2
        n = int(self.libc.writev(fd, iov, count))
        # every later reply goes to the kernel in C, as without a custom io
        self.custom_io(self.session, ctypes.addressof(self.plain), self.fd)
        return n


_WRITEV = ctypes.CFUNCTYPE(
    ctypes.c_ssize_t, ctypes.c_int, ctypes.POINTER(Iovec), ctypes.c_int, ctypes.c_void_p
)
_patch: _InitPatch | None = None


def enable(conn: Any, fuse: int | None, abi: libfuse_abi.LibfuseAbi) -> bool:
    """Ask for the write-back cache and HANDLE_KILLPRIV_V2 (called from libfuse's init, before
    the INIT reply is built); False without KILLPRIV_V2 (then writes still work, each one
    costing a GETXATTR upcall)."""
    global _patch
    if conn is None or not fuse:
        return False
    if not abi.want(conn, CAP_WRITEBACK_CACHE):
        log.info("the kernel offers no write-back cache: every write is an upcall")
        return False
    if abi.killpriv_capability:
        if abi.want(conn, CAP_HANDLE_KILLPRIV_V2):
            return True
        log.info("write-back without KILLPRIV_V2: the kernel does not offer it")
        return False
    if not abi.init_patch:
        log.info("write-back without KILLPRIV_V2: %s cannot send it", abi.describe())
        return False
    try:
        _patch = _InitPatch(abi)
        ok = _patch.install(fuse)
    except (AttributeError, OSError, ValueError) as e:
        log.info("write-back without KILLPRIV_V2: %s", e)
        return False
    if not ok:
        log.info("write-back without KILLPRIV_V2: fuse_session_custom_io refused")
    return ok


class Later:
    """Runs `notify(path)` for each path added, from one thread of its own (see the module
    docstring); `add(..., wait=s)` returns once it ran, or after `s` seconds at most."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.notify = notify
        self._done = threading.Condition()
        self._todo: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, path: str, wait: float = 0.0) -> None:
        with self._lock:
            fresh = path not in self._pending
            self._pending.add(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="afs-later", daemon=True)
                self._thread.start()
        if fresh:
            self._todo.put(path)
        if wait > 0:
            with self._done:
                self._done.wait_for(lambda: path not in self._pending, timeout=wait)

    def _loop(self) -> None:
        while True:
            path = self._todo.get()
            try:
                self.notify(path)
            except Exception:
                log.exception("kernel notification for %s failed", path)
            with self._lock:
                self._pending.discard(path)
            with self._done:
                self._done.notify_all()
