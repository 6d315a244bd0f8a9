"""Answering libfuse's `read_buf` from Python: hand libfuse file descriptors, not bytes.

WHY: with plain `read`, every request's bytes are read into a Python `bytes` and copied into
libfuse's buffer while holding the GIL. With `read_buf` we return a `fuse_bufvec` naming
`(fd, position, length)` pieces of the cached files; libfuse then preads them itself, in C, in its
worker thread, with the GIL released (other requests run meanwhile). Bytes that are not on disk
yet (drafts, control files, blocks still being fetched) go back as one malloc'ed memory buffer.

Ownership (libfuse 2.9 and 3.x `fuse_lib_read`): libfuse frees the bufvec and every memory
buffer in it with free(), and never closes fds. So both are allocated with libc malloc here, and
the fds must stay open until the file is released (cache/handles.py guarantees that).

The structures (struct fuse_buf grew `mem_size` in libfuse 3.17) and the functions come from
libfuse_abi, per loaded version; without a known layout the mount registers neither read_buf
nor write_buf (libfuse_abi.LibfuseAbi.fit), so nothing here runs.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

from artifactfs.fusefs import libfuse_abi
from artifactfs.fusefs.libfuse_abi import FUSE_BUF_FD_SEEK, FUSE_BUF_IS_FD, bufvec_type

# PyDLL, not CDLL: these calls take nanoseconds, and a CDLL call releases the GIL around them.
# Each release in a request hands the GIL to another worker thread and makes this one queue to
# get it back (the convoy that made multi-threaded cold reads 3x slower than one thread,
# profiled); calloc also zeroes, so one call does what malloc + memset did.
_libc = ctypes.PyDLL(None)
_calloc = _libc.calloc
_calloc.restype = ctypes.c_void_p
_calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_malloc = _libc.malloc
_malloc.restype = ctypes.c_void_p
_malloc.argtypes = [ctypes.c_size_t]
_memmove = _libc.memmove
_memmove.restype = ctypes.c_void_p
_memmove.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
_memset = _libc.memset
_memset.restype = ctypes.c_void_p
_memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def clear(buf: Any, size: int) -> None:
    """Zero `size` bytes at `buf` (a ctypes pointer) without releasing the GIL (ctypes.memset
    releases it: one more hand-over per LOOKUP)."""
    _memset(ctypes.cast(buf, ctypes.c_void_p), 0, size)


def _buf_type() -> type[ctypes.Structure]:
    kind = libfuse_abi.current().buf_type
    if kind is None:  # fit() keeps read_buf/write_buf unregistered then: never reached
        raise OSError(95, "struct fuse_buf of this libfuse is unknown")
    return kind


def _alloc_bufvec(bufpp: Any, count: int) -> Any:
    kind = bufvec_type(_buf_type(), max(count, 1))
    addr = _calloc(1, ctypes.sizeof(kind))
    if not addr:
        raise MemoryError("calloc failed for a fuse_bufvec")
    vec = kind.from_address(addr)
    vec.count = count
    ctypes.cast(bufpp, ctypes.POINTER(ctypes.c_void_p))[0] = addr
    return vec


def reply_fds(bufpp: Any, spans: Sequence[tuple[int, int, int]]) -> int:
    """Point libfuse at `(fd, pos, length)` pieces; returns the byte count."""
    vec = _alloc_bufvec(bufpp, len(spans))
    total = 0
    for i, (fd, pos, length) in enumerate(spans):
        b = vec.buf[i]
        b.size = length
        b.flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK
        b.fd = fd
        b.pos = pos
        total += length
    return total


def reply_bytes(bufpp: Any, data: bytes) -> int:
    """Hand libfuse a malloc'ed copy of `data` (libfuse frees it)."""
    vec = _alloc_bufvec(bufpp, 1)
    n = len(data)
    if n:
        mem = _malloc(n)
        if not mem:
            raise MemoryError("malloc failed for a read buffer")
        _memmove(mem, data, n)
        vec.buf[0].mem = mem
        if hasattr(vec.buf[0], "mem_size"):
            vec.buf[0].mem_size = n
    vec.buf[0].size = n
    return n


def write_to_fd(src: Any, fd: int, offset: int) -> int:
    """Copy the bytes of libfuse's `src` bufvec (a WRITE) into `fd` at `offset`, in C:
    fuse_buf_copy writes them with the GIL released, and no Python `bytes` is made. Returns
    the byte count (OSError with libfuse's errno when the copy fails)."""
    size = buffer_size(src)
    dst = bufvec_type(_buf_type(), 1)()
    dst.count = 1
    dst.buf[0].size = size
    dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK
    dst.buf[0].fd = fd
    dst.buf[0].pos = offset
    n = int(_function("fuse_buf_copy")(ctypes.addressof(dst), _address(src), 0))
    if n < 0:
        raise OSError(-n, os.strerror(-n))
    return n


def buffer_size(src: Any) -> int:
    return int(_function("fuse_buf_size")(_address(src)))


def _function(name: str) -> Any:
    fn = libfuse_abi.current().function(name)
    if fn is None:
        raise OSError(95, f"{name} is not available in this libfuse")
    return fn


def _address(ptr: Any) -> int | None:
    """The address a ctypes pointer (mfusepy's fuse_bufvec_p) holds."""
    return ctypes.cast(ptr, ctypes.c_void_p).value
