"""Answering libfuse's `read_buf` from Python: hand libfuse file descriptors, not bytes.

WHY: with plain `read`, every request's bytes are read into a Python `bytes` and copied into
libfuse's buffer while holding the GIL. With `read_buf` we return a `fuse_bufvec` naming
`(fd, position, length)` pieces of the cached files; libfuse then preads them itself, in C, in its
worker thread, with the GIL released (other requests run meanwhile). Bytes that are not on disk
yet (drafts, control files, blocks still being fetched) go back as one malloc'ed memory buffer.

Ownership (libfuse 2.9 and 3.x `fuse_lib_read`): libfuse frees the bufvec and every memory
buffer in it with free(), and never closes fds. So both are allocated with libc malloc here, and
the fds must stay open until the file is released (cache/handles.py guarantees that).

mfusepy declares `fuse_bufvec.buf` as a pointer, but in C it is an inline array
(`struct fuse_buf buf[1]`); the layout is therefore declared here, per piece count.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from functools import cache
from typing import Any

FUSE_BUF_IS_FD = 1 << 1
FUSE_BUF_FD_SEEK = 1 << 2

_libc = ctypes.CDLL(None, use_errno=True)
_malloc = _libc.malloc
_malloc.restype = ctypes.c_void_p
_malloc.argtypes = [ctypes.c_size_t]


class FuseBuf(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("flags", ctypes.c_int),
        ("mem", ctypes.c_void_p),
        ("fd", ctypes.c_int),
        ("pos", ctypes.c_int64),
    ]


@cache
def _bufvec_type(count: int) -> type[ctypes.Structure]:
    class FuseBufvec(ctypes.Structure):
        _fields_ = [
            ("count", ctypes.c_size_t),
            ("idx", ctypes.c_size_t),
            ("off", ctypes.c_size_t),
            ("buf", FuseBuf * count),
        ]

    return FuseBufvec


def _alloc_bufvec(bufpp: Any, count: int) -> Any:
    kind = _bufvec_type(max(count, 1))
    addr = _malloc(ctypes.sizeof(kind))
    if not addr:
        raise MemoryError("malloc failed for a fuse_bufvec")
    ctypes.memset(addr, 0, ctypes.sizeof(kind))
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
        ctypes.memmove(mem, data, n)
        vec.buf[0].mem = mem
    vec.buf[0].size = n
    return n


def write_to_fd(src: Any, fd: int, offset: int) -> int:
    """Copy the bytes of libfuse's `src` bufvec (a WRITE) into `fd` at `offset`, in C:
    fuse_buf_copy writes them with the GIL released, and no Python `bytes` is made. Returns
    the byte count (OSError with libfuse's errno when the copy fails)."""
    lib = _fuse_lib()
    size = int(lib.fuse_buf_size(src))
    kind = _bufvec_type(1)
    dst = kind()
    dst.count = 1
    dst.buf[0].size = size
    dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK
    dst.buf[0].fd = fd
    dst.buf[0].pos = offset
    n = int(lib.fuse_buf_copy(ctypes.byref(dst), src, 0))
    if n < 0:
        raise OSError(-n, os.strerror(-n))
    return n


def buffer_size(src: Any) -> int:
    return int(_fuse_lib().fuse_buf_size(src))


@cache
def _fuse_lib() -> Any:
    import mfusepy  # the libfuse the mount loaded (check_fuse chose it)

    lib = mfusepy._libfuse
    lib.fuse_buf_size.restype = ctypes.c_size_t
    lib.fuse_buf_size.argtypes = [ctypes.c_void_p]
    lib.fuse_buf_copy.restype = ctypes.c_ssize_t
    lib.fuse_buf_copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    return lib
