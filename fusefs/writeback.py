"""The kernel's write-back cache for drafts, and a write(2) that costs no upcall.

With FUSE_CAP_WRITEBACK_CACHE the kernel keeps written pages in its page cache and hands them to
the mount in big WRITE requests (up to max_write) when it writes back: on close (FLUSH), fsync,
memory pressure or the flusher. A write(2) of 100 bytes is then a memory copy, as on a local
disk, instead of one round trip to Python each.

That alone is not enough. Before every write(2) the kernel asks whether the file carries
`security.capability` (file_remove_privs: one GETXATTR upcall per write, ~30-60 µs here,
measured) unless the super block is SB_NOSEC, which FUSE sets only when the daemon answers INIT
with FUSE_HANDLE_KILLPRIV_V2 (kernel >= 5.11): "the file system clears suid/sgid/capabilities
itself". libfuse 3.14 (Debian 12) does not know that flag and never sends it, so `patch_init`
adds it to the INIT reply: through libfuse's public fuse_session_custom_io, the first reply
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

log = logging.getLogger(__name__)

FUSE_CAP_WRITEBACK_CACHE = 1 << 16
FUSE_HANDLE_KILLPRIV_V2 = 1 << 28
"""Kernel INIT flag (fuse_kernel.h, protocol 7.33); libfuse >= 3.17 spells it as a capability."""
_FLAGS_OFFSET = 12
"""Byte offset of `flags` in struct fuse_init_out (major, minor, max_readahead, flags, ...)."""


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _CustomIo(ctypes.Structure):
    """struct fuse_custom_io (libfuse >= 3.14): writev, read, splice_receive, splice_send."""

    _fields_ = [
        ("writev", ctypes.c_void_p),
        ("read", ctypes.c_void_p),
        ("splice_receive", ctypes.c_void_p),
        ("splice_send", ctypes.c_void_p),
    ]


_WRITEV = ctypes.CFUNCTYPE(
    ctypes.c_ssize_t, ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_int, ctypes.c_void_p
)


class _InitPatch:
    """Sets FUSE_HANDLE_KILLPRIV_V2 in the INIT reply, then steps aside (see the docstring)."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.writev.argtypes = [ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_int]
        self.libc.writev.restype = ctypes.c_ssize_t
        self.plain = _CustomIo(
            ctypes.cast(self.libc.writev, ctypes.c_void_p).value,
            ctypes.cast(self.libc.read, ctypes.c_void_p).value,
            None,
            None,
        )
        self.callback = _WRITEV(self._writev)  # kept alive: libfuse holds its address
        self.session: int | None = None
        self.fd = -1
        self.patched = False
        lib.fuse_get_session.restype = ctypes.c_void_p
        lib.fuse_get_session.argtypes = [ctypes.c_void_p]
        lib.fuse_session_fd.argtypes = [ctypes.c_void_p]
        lib.fuse_session_custom_io.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(_CustomIo),
            ctypes.c_int,
        ]

    def install(self, fuse: int) -> bool:
        self.session = self.lib.fuse_get_session(fuse)
        if not self.session:
            return False
        self.fd = self.lib.fuse_session_fd(self.session)
        io = _CustomIo(
            ctypes.cast(self.callback, ctypes.c_void_p).value, self.plain.read, None, None
        )
        return self.lib.fuse_session_custom_io(self.session, ctypes.byref(io), self.fd) == 0

    def _writev(self, fd: int, iov: Any, count: int, _userdata: Any) -> int:
        if not self.patched:
            self.patched = True
            # iov[0] is the reply header, iov[1] the fuse_init_out of a successful INIT
            if count >= 2 and iov[1].len > _FLAGS_OFFSET + 4 and iov[1].base:
                flags = ctypes.cast(iov[1].base + _FLAGS_OFFSET, ctypes.POINTER(ctypes.c_uint32))
                flags[0] |= FUSE_HANDLE_KILLPRIV_V2
        n = int(self.libc.writev(fd, iov, count))
        # every later reply goes to the kernel in C, as without a custom io
        self.lib.fuse_session_custom_io(self.session, ctypes.byref(self.plain), self.fd)
        return n


_patch: _InitPatch | None = None


def enable(conn: Any, fuse: int | None, lib: Any) -> bool:
    """Ask for the write-back cache and the INIT patch (called from libfuse's init, before the
    INIT reply is built); False when this libfuse cannot (then writes still work, each one
    costing a GETXATTR upcall)."""
    global _patch
    if conn is None or not fuse:
        return False
    conn.want |= FUSE_CAP_WRITEBACK_CACHE
    if not hasattr(lib, "fuse_session_custom_io"):
        log.info("libfuse has no fuse_session_custom_io: writes ask security.capability each")
        return False
    try:
        _patch = _InitPatch(lib)
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
