"""Host file system calls the os module lacks or spells differently, for the staging layer.

fallocate(2) with its mode flags (os has posix_fallocate only), a whole-file copy between
descriptors (copy_file_range, reflinks where the file system has them), errno-carrying OSErrors.
Apart from staging.py so that module stays about what a staged entry is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from typing import Any

COPY_CHUNK = 1 << 30


def oserr(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def parent_of(rel: str) -> str:
    return rel.rpartition("/")[0]


_libc: Any = None


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2) with every mode the staging file system supports (os has only mode 0)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, mode, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def copy_fd(src: int, dst: int) -> None:
    """Copy all of `src` into `dst` from offset 0 (copy_file_range, falling back to a copy)."""
    offset = 0
    try:
        while True:
            n = os.copy_file_range(src, dst, COPY_CHUNK, offset, offset)
            if n == 0:
                break
            offset += n
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        os.lseek(src, offset, os.SEEK_SET)
        os.lseek(dst, offset, os.SEEK_SET)
        with os.fdopen(os.dup(src), "rb") as fsrc, os.fdopen(os.dup(dst), "wb") as fdst:
            shutil.copyfileobj(fsrc, fdst)
    os.ftruncate(dst, os.fstat(src).st_size)
