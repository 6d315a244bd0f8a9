"""The libfuse ABI room: everything the mount declares about libfuse's C ABI beyond mfusepy.

WHY one room: ctypes trusts what it is told. libfuse 3.17 appended `mem_size` to struct fuse_buf
(a bufvec of 3.14 buffers read with 3.17's stride hands libfuse garbage fds and lengths: the
daemon dies on the first read spanning two cache blocks), gave `fuse_session_custom_io` a fourth
argument under the old name, and moved capability flags to 64-bit `want_ext`/`capable_ext`
(the 32-bit `want` is kept for compatibility; setting both aborts the process). So a layout or a
signature is declared here once, per libfuse version, with the version it was read from, and
tests/test_libfuse_abi.py compiles the declarations against the installed headers.

How it decides: `current()` reads the loaded library's version once (`fuse_pkgversion()`, else
`fuse_version()`) and picks, per fast path, what that version's headers say:

    fd-backed read_buf, write_buf     struct fuse_buf: 2.9 and 3.0-3.16 / 3.17-3.18 (+ mem_size)
    KILLPRIV_V2 for write-back        3.14-3.16: INIT reply patched through fuse_custom_io
                                      (writeback.py); >= 3.17: libfuse's own capability flag
    capability flags (conn)           fuse_set_feature_flag@FUSE_3.17.3 when exported, else
                                      want_ext (3.17-3.18), else the 32-bit want (older)

A libfuse newer than NEWEST_KNOWN fails safe: read_buf and write_buf are not registered (libfuse
then calls read and write with Python bytes: slower, never a wrong byte) and the INIT patch is
not tried; one log line says so. Flags still work there: libfuse's own versioned functions, or
the `want` field it keeps for old binaries.

Adding a version: read its include/fuse_common.h and include/fuse_lowlevel.h (fuse_buf,
fuse_bufvec, fuse_custom_io, fuse_conn_info, fuse_file_info and every function in FUNCTIONS),
add what changed with the version that changed it, raise NEWEST_KNOWN, and run
tests/test_libfuse_abi.py on a machine that has it (it fails by name on any mismatch).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

Version = tuple[int, int, int]

NEWEST_KNOWN = (3, 18)
"""The newest libfuse minor whose headers were read for this module."""
PASSTHROUGH_SINCE: Version = (3, 17, 1)
"""First libfuse with fuse_passthrough_open (FUSE_CAP_PASSTHROUGH; needs CAP_SYS_ADMIN too)."""
VERSION_ENV = "ARTIFACTFS_LIBFUSE_VERSION"
"""Pretend the loaded libfuse is this version (e.g. 3.99.0: the fail-safe path, tested)."""

# libfuse capability bits (fuse_common.h FUSE_CAP_*; unchanged from 2.9 to 3.18)
CAP_ATOMIC_O_TRUNC = 1 << 3
CAP_WRITEBACK_CACHE = 1 << 16
CAP_HANDLE_KILLPRIV_V2 = 1 << 21  # libfuse >= 3.17; older ones never send it (writeback.py)
CAP_CACHE_SYMLINKS = 1 << 23
CAP_PASSTHROUGH = 1 << 29  # libfuse >= 3.17
KERNEL_HANDLE_KILLPRIV_V2 = 1 << 28
"""The kernel's INIT flag (linux/fuse.h, protocol 7.33) that CAP_HANDLE_KILLPRIV_V2 sends."""

FUSE_BUF_IS_FD = 1 << 1
FUSE_BUF_FD_SEEK = 1 << 2


def choose_libfuse(lib: str = "fuse3") -> None:
    """Make the next `import mfusepy` load lib<lib>. Unnamed, mfusepy loads libfuse2 whenever
    it is installed (libfuse2t64 on Debian 13), a different ABI. fusefs/__init__.py calls this
    before any module of the mount imports mfusepy; check_fuse calls it with the library a
    mount asked for (`fuse` for the bench's libfuse2 runs). Once mfusepy is loaded it cannot
    change library in-process: check_fuse then reports the mismatch."""
    if "mfusepy" not in sys.modules:
        os.environ["FUSE_LIBRARY_NAME"] = lib


# -- structures -----------------------------------------------------------------------------------
class FuseBuf(ctypes.Structure):
    """struct fuse_buf, libfuse 2.9 and 3.0 to 3.16."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("flags", ctypes.c_int),  # enum fuse_buf_flags
        ("mem", ctypes.c_void_p),
        ("fd", ctypes.c_int),
        ("pos", ctypes.c_int64),  # off_t (64-bit on every Linux libfuse 3 builds for)
    ]


class FuseBuf317(ctypes.Structure):
    """struct fuse_buf, libfuse 3.17 and 3.18: `mem_size` appended (the allocation behind mem)."""

    _fields_ = [*FuseBuf._fields_, ("mem_size", ctypes.c_size_t)]


@cache
def bufvec_type(buf: type[ctypes.Structure], count: int) -> type[ctypes.Structure]:
    """struct fuse_bufvec holding `count` buffers inline (C declares `buf[1]` and lets the
    allocator make room for more; mfusepy declares a pointer there, which is wrong)."""

    class FuseBufvec(ctypes.Structure):
        _fields_ = [
            ("count", ctypes.c_size_t),
            ("idx", ctypes.c_size_t),
            ("off", ctypes.c_size_t),
            ("buf", buf * count),
        ]

    return FuseBufvec


class Iovec(ctypes.Structure):
    """struct iovec (sys/uio.h), as fuse_custom_io's writev receives it."""

    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class CustomIo(ctypes.Structure):
    """struct fuse_custom_io, libfuse 3.14 to 3.16 (3.17 appends clone_fd; not used there)."""

    _fields_ = [
        ("writev", ctypes.c_void_p),
        ("read", ctypes.c_void_p),
        ("splice_receive", ctypes.c_void_p),
        ("splice_send", ctypes.c_void_p),
    ]


class InitOutHead(ctypes.Structure):
    """The kernel's struct fuse_init_out (linux/fuse.h) as far as `flags`: what the INIT patch
    edits in the reply (the kernel's ABI, stable across libfuse versions)."""

    _fields_ = [
        ("major", ctypes.c_uint32),
        ("minor", ctypes.c_uint32),
        ("max_readahead", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


_BITS = ("writepage", "direct_io", "keep_cache", "flush", "nonseekable", "flock_release")


class FileInfo317(ctypes.Structure):
    """struct fuse_file_info, libfuse 3.17 and 3.18 (64 bytes). mfusepy declares 40 bytes and
    no `backing_id`, the field a passthrough open sets."""

    _fields_ = [
        ("flags", ctypes.c_int32),
        *[(name, ctypes.c_uint32, 1) for name in _BITS],
        ("cache_readdir", ctypes.c_uint32, 1),
        ("noflush", ctypes.c_uint32, 1),
        ("parallel_direct_writes", ctypes.c_uint32, 1),
        ("padding", ctypes.c_uint32, 23),
        ("padding2", ctypes.c_uint32),
        ("padding3", ctypes.c_uint32),
        ("fh", ctypes.c_uint64),
        ("lock_owner", ctypes.c_uint64),
        ("poll_events", ctypes.c_uint32),
        ("backing_id", ctypes.c_int32),
        ("compat_flags", ctypes.c_uint64),
        ("reserved", ctypes.c_uint64 * 2),
    ]


# -- functions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CFunction:
    """A libfuse function as its header declares it, in C spellings (the ABI test assigns the
    real function to a pointer of exactly this type, -Werror), for the versions listed."""

    name: str
    restype: str
    argtypes: tuple[str, ...]
    node: str
    """libfuse 3's symbol version: bound with dlvsym to it, the signature holds in any newer
    libfuse too (a changed signature gets a new node; the old one stays)."""
    since: tuple[int, int] = (3, 0)
    until: tuple[int, int] | None = None
    optional: bool = False
    """Not exported by every build of a version that has it (upstream 3.17.1-3.17.2 inline it)."""

    def declared_for(self, version: Version) -> bool:
        return self.since <= version[:2] and (self.until is None or version[:2] <= self.until)


_SESSION, _FUSE, _CONN = "struct fuse_session *", "struct fuse *", "struct fuse_conn_info *"
_FLAG_ARGS = (_CONN, "uint64_t")
FUNCTIONS = (
    CFunction("fuse_version", "int", (), "FUSE_3.0"),
    CFunction("fuse_pkgversion", "const char *", (), "FUSE_3.0"),
    CFunction("fuse_buf_size", "size_t", ("const struct fuse_bufvec *",), "FUSE_3.0", (2, 9)),
    CFunction(
        "fuse_buf_copy",
        "ssize_t",
        ("struct fuse_bufvec *", "struct fuse_bufvec *", "enum fuse_buf_copy_flags"),
        "FUSE_3.0",
        (2, 9),
    ),
    CFunction("fuse_get_session", _SESSION, (_FUSE,), "FUSE_3.0"),
    CFunction("fuse_session_fd", "int", (_SESSION,), "FUSE_3.0"),
    CFunction(  # 3.17's header gives this name a 4th argument (op_size); used up to 3.16 only
        "fuse_session_custom_io",
        "int",
        (_SESSION, "const struct fuse_custom_io *", "int"),
        "FUSE_3.0",
        (3, 14),
        (3, 16),
    ),
    CFunction("fuse_invalidate_path", "int", (_FUSE, "const char *"), "FUSE_3.1"),
    CFunction("fuse_set_log_func", "void", ("fuse_log_func_t",), "FUSE_3.7", (3, 7)),
    CFunction(
        "fuse_lowlevel_notify_inval_entry",
        "int",
        (_SESSION, "fuse_ino_t", "const char *", "size_t"),
        "FUSE_3.0",
    ),
    CFunction("fuse_set_feature_flag", "bool", _FLAG_ARGS, "FUSE_3.17.3", (3, 17), None, True),
    CFunction("fuse_unset_feature_flag", "void", _FLAG_ARGS, "FUSE_3.17.3", (3, 17), None, True),
    CFunction("fuse_get_feature_flag", "bool", _FLAG_ARGS, "FUSE_3.17.3", (3, 17), None, True),
    CFunction("fuse_passthrough_open", "int", ("fuse_req_t", "int"), "FUSE_3.17", (3, 17)),
    CFunction("fuse_passthrough_close", "int", ("fuse_req_t", "int"), "FUSE_3.17", (3, 17)),
)

C_SCALARS: dict[str, Any] = {
    "void": None,
    "int": ctypes.c_int,
    "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t,
    "ssize_t": ctypes.c_ssize_t,
    "uint64_t": ctypes.c_uint64,
    "fuse_ino_t": ctypes.c_uint64,
    "const char *": ctypes.c_char_p,
    "enum fuse_buf_copy_flags": ctypes.c_int,
    "fuse_req_t": ctypes.c_void_p,
    "fuse_log_func_t": ctypes.c_void_p,
}
"""C spelling -> ctypes type; any other pointer is c_void_p (the ABI test checks the sizes)."""


def ctype_of(spelling: str) -> Any:
    if spelling in C_SCALARS:
        return C_SCALARS[spelling]
    if spelling.endswith("*"):
        return ctypes.c_void_p
    raise KeyError(f"no ctypes type declared for C type {spelling!r}")


_libc = ctypes.CDLL(None, use_errno=True)
_dlvsym = getattr(_libc, "dlvsym", None)
if _dlvsym is not None:
    _dlvsym.restype = ctypes.c_void_p
    _dlvsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]


def parse_version(text: str) -> Version | None:
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
    return None if m is None else (int(m[1]), int(m[2]), int(m[3] or 0))


def detect_version(lib: Any) -> Version:
    """The loaded library's version: fuse_pkgversion() ("3.17.2"; libfuse 3 only), else
    fuse_version() (29 for 2.9, 314 for 3.14: no micro version)."""
    forced = parse_version(os.environ.get(VERSION_ENV, ""))
    if forced is not None:
        return forced
    try:
        pkg = lib["fuse_pkgversion"]
        pkg.restype, pkg.argtypes = ctypes.c_char_p, []
        found = parse_version((pkg() or b"").decode("ascii", "replace"))
        if found is not None:
            return found
    except AttributeError:
        pass
    v = int(lib.fuse_version())
    return (v // 10, v % 10, 0) if v < 100 else (v // 100, v % 100, 0)


# -- the loaded library -----------------------------------------------------------------------------
class LibfuseAbi:
    """What the loaded libfuse's ABI allows: layouts, bound functions, capability flags."""

    def __init__(self, lib: Any, path: str, version: Version | None = None) -> None:
        self.lib = lib
        self.path = path
        self.version = version or detect_version(lib)
        minor = self.version[:2]
        self.known = minor == (2, 9) or (3, 0) <= minor <= NEWEST_KNOWN
        self.buf_type: type[ctypes.Structure] | None = None
        if self.known:
            self.buf_type = FuseBuf317 if minor >= (3, 17) else FuseBuf
        self.init_patch = (3, 14) <= minor <= (3, 16)
        """KILLPRIV_V2 needs the INIT reply patched (libfuse knows no capability for it)."""
        self.killpriv_capability = minor >= (3, 17)
        self._ext = (3, 17) <= minor <= NEWEST_KNOWN  # want_ext/capable_ext at known offsets
        self._bound: dict[str, Any] = {}

    @property
    def buffers(self) -> bool:
        """read_buf and write_buf may be used (struct fuse_buf is known)."""
        return self.buf_type is not None

    def describe(self) -> str:
        return f"libfuse {'.'.join(map(str, self.version))} ({self.path})"

    def function(self, name: str) -> Any | None:
        """`name` bound with its declared signature, or None when this version does not have
        it (or it is not declared for this version: an unknown signature is never called)."""
        if name not in self._bound:
            self._bound[name] = self._bind(name)
        return self._bound[name]

    def _bind(self, name: str) -> Any | None:
        decl = next((f for f in FUNCTIONS if f.name == name), None)
        if decl is None:
            raise KeyError(f"{name} is not declared in libfuse_abi.FUNCTIONS")
        if not decl.declared_for(self.version):
            return None
        proto = ctypes.CFUNCTYPE(ctype_of(decl.restype), *map(ctype_of, decl.argtypes))
        if self.version[0] == 3 and _dlvsym is not None:
            handle = getattr(self.lib, "_handle", None)
            addr = _dlvsym(handle, name.encode(), decl.node.encode())
            return proto(addr) if addr else None
        if not self.known:  # no symbol versions to vouch for the signature
            return None
        try:
            return proto((name, self.lib))
        except AttributeError:
            return None

    # -- capability flags (only from libfuse's init callback, on its conn) ---------------------
    def capable(self, conn: Any, flag: int) -> bool:
        get = self.function("fuse_get_feature_flag")
        if get is not None:
            return bool(get(ctypes.addressof(conn), flag))
        if self._ext:
            return bool(conn.capable_ext & flag)
        return flag < (1 << 32) and bool(conn.capable & flag)

    def want(self, conn: Any, flag: int) -> bool:
        """Ask for `flag` if the kernel offers it (libfuse >= 3.17 fails the whole INIT over a
        flag it was not offered). Never touch conn.want directly: 3.17 aborts the process when
        both want and want_ext changed."""
        if not self.capable(conn, flag):
            return False
        put = self.function("fuse_set_feature_flag")
        if put is not None:
            return bool(put(ctypes.addressof(conn), flag))
        if self._ext:
            conn.want_ext |= flag
        else:
            conn.want |= flag
        return True

    def unwant(self, conn: Any, flag: int) -> None:
        drop = self.function("fuse_unset_feature_flag")
        if drop is not None:
            drop(ctypes.addressof(conn), flag)
        elif self._ext:
            conn.want_ext &= ~flag & 0xFFFFFFFFFFFFFFFF
        elif flag < (1 << 32):
            conn.want &= ~flag & 0xFFFFFFFF

    # -- what needs which version ---------------------------------------------------------------
    def passthrough_available(self) -> bool:
        """libfuse can hand the kernel a backing fd (>= 3.17.1; the kernel and CAP_SYS_ADMIN
        decide the rest, through conn's capable flags)."""
        return self.version >= PASSTHROUGH_SINCE and (
            self.function("fuse_passthrough_open") is not None
        )

    def fit(self, ops: Any) -> None:
        """Take away from `ops` the callbacks whose structures this libfuse's were not read
        for (mfusepy registers no callback that is None): libfuse then calls read and write.
        One log line either way."""
        if self.buffers:
            log.info("%s: fd-backed reads and buffer writes on", self.describe())
            return
        for name in ("read_buf", "write_buf"):
            setattr(ops, name, None)
        log.warning(
            "%s is not one this mount was checked against (2.9, 3.0-%d.%d): fd-backed reads, "
            "buffer writes and the INIT patch are off; reads and writes go through plain "
            "read/write (slower, same bytes)",
            self.describe(),
            *NEWEST_KNOWN,
        )


@cache
def current() -> LibfuseAbi:
    """The ABI of the libfuse mfusepy loaded (check_fuse chose which, before)."""
    choose_libfuse()
    import mfusepy

    return LibfuseAbi(mfusepy._libfuse, str(mfusepy._libfuse_path))
