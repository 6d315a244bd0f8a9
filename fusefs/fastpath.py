"""The C fast path (fastpath.c): LOOKUP and READ of version files answered without Python.

WHY: in a cold epoch over a small-file dataset (page cache dropped, blobs in our cache) every
file costs a LOOKUP and a READ, and each reached Python on a libfuse worker thread: with 4
readers the daemon spent its time handing the GIL between workers, and 20k x 4 KiB files read
at 0.12x local disk (issue 23's note has the microseconds). Version paths name immutable bytes,
so an answer Python gave once holds for the mount's life: it is recorded in a C table that
libfuse's threads consult first, without the GIL.

    Versions.getattr   records a version file's stat        (next LOOKUPs: C)
    Versions.spans     records its verified whole object    (next READs: C)

The C side re-checks the object's fingerprint (device, inode, size, ctime: what its seal was
checked against) with one fstat per READ, and gives anything it does not know or that does not
match to Python's callbacks, which fetch, re-check or refuse as before. Not recorded: drafts,
the control directory, aliases, local `file://` references (read with the caller's rights,
refgate.py), objects held as blocks. Reads from C count as uses for the cache's LRU: their
objects are touched in batches (`TOUCH_EVERY`). The table is bounded (`LIMIT` paths, about
300 bytes each); past it, further paths are answered by Python as before.

Only with libfuse 3 of a version libfuse_abi knows (the getattr and read_buf signatures and the
first fields of struct fuse_buf are the same from 3.0 to 3.18), and only if the library was
built at install (setup.py; it needs a C compiler). Otherwise `FastPath.load` says why in one
log line and the mount runs as before: `NO_FAST_PATH` records nothing.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifactfs.fusefs.draft_tree import Stat
from artifactfs.fusefs.libfuse_abi import LibfuseAbi

log = logging.getLogger(__name__)

ABI = 1
"""What fastpath.c's afs_abi() must answer (a stale build from another checkout is refused)."""
LIMIT = 1 << 18
"""Paths the table holds at most (~300 bytes each)."""
TOUCH_EVERY = 10.0
"""Seconds between batches of LRU touches for objects read in C."""
DISABLE_ENV = "ARTIFACTFS_NO_FAST_PATH"
"""Set to 1: every request goes to Python (to compare, or to rule the fast path out)."""


class Attr(ctypes.Structure):
    """struct afs_attr (fastpath.c): a stat as Python's getattr rendered it."""

    _fields_ = [
        ("mode", ctypes.c_uint32),
        ("nlink", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("size", ctypes.c_int64),
        ("blocks", ctypes.c_int64),
        ("blksize", ctypes.c_int64),
        ("ino", ctypes.c_uint64),
        ("atime_ns", ctypes.c_int64),
        ("mtime_ns", ctypes.c_int64),
        ("ctime_ns", ctypes.c_int64),
    ]


class BlobCheck(ctypes.Structure):
    """struct afs_blob_check (fastpath.c): an object's fingerprint when it was verified."""

    _fields_ = [
        ("dev", ctypes.c_uint64),
        ("ino", ctypes.c_uint64),
        ("size", ctypes.c_int64),
        ("ctime_ns", ctypes.c_int64),
    ]


def library_path() -> Path | None:
    """The built fastpath library next to this module, if setup.py built one."""
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_fastpath{suffix}"
        if candidate.is_file():
            return candidate
    return None


class FastPath:
    """The C table of answers, and its place in libfuse's operations."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.afs_put_attr.argtypes = [ctypes.c_char_p, ctypes.POINTER(Attr)]
        lib.afs_put_blob.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(BlobCheck)]
        lib.afs_set_fallbacks.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.afs_set_limit.argtypes = [ctypes.c_size_t]
        lib.afs_entries.restype = ctypes.c_size_t
        lib.afs_take_touched.restype = ctypes.c_size_t
        lib.afs_take_touched.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        lib.afs_set_limit(LIMIT)
        self.installed = False
        self.reads_in_c = False
        self._full = False
        self._kept: list[Any] = []
        """What keeps Python's own callbacks alive once only C reaches them (install)."""
        self._stop = threading.Event()
        self._toucher: threading.Thread | None = None

    @classmethod
    def load(cls, abi: LibfuseAbi) -> FastPath | NoFastPath:
        """The fast path, or NO_FAST_PATH with one log line saying why not."""
        why = None
        path = library_path()
        if os.environ.get(DISABLE_ENV):
            why = f"{DISABLE_ENV} is set"
        elif abi.version[0] != 3:
            why = "it needs libfuse 3 (this mount loaded libfuse 2)"
        elif not abi.known:
            why = "this libfuse is newer than the versions it was checked against"
        elif path is None:
            why = "it was not built at install (no C compiler then?): reinstall with gcc"
        if why is None and path is not None:
            try:
                lib = ctypes.CDLL(str(path))
                if lib.afs_abi() != ABI:
                    why = f"{path.name} is from another version of artifactfs: reinstall"
                else:
                    log.info("C fast path on (%s)", path.name)
                    return cls(lib)
            except (OSError, AttributeError) as e:
                why = f"{path} did not load: {e}"
        log.info("C fast path off: %s; every request is answered in Python", why)
        return NO_FAST_PATH

    # -- into libfuse ---------------------------------------------------------------------------
    def install(self, ops: ctypes.Structure) -> None:
        """Put the C getattr and read_buf into libfuse's operations struct (before fuse_main),
        with Python's as their fallbacks. Without a Python read_buf (libfuse_abi.fit left it
        out) only getattr goes through C."""
        getattr_type = type(ops.getattr)
        py_getattr = ops.getattr
        if not ctypes.cast(py_getattr, ctypes.c_void_p).value:
            return
        py_read_buf = ops.read_buf
        has_read_buf = bool(ctypes.cast(py_read_buf, ctypes.c_void_p).value)
        # A field read gives a new pointer object, not the callback: what owns Python's
        # callbacks (their libffi closures) is the struct's record of what was assigned to
        # it, which assigning the C functions below may drop. Keep it (and, in patch_main,
        # the struct mfusepy made), or C's fallback would call freed closures.
        self._kept.append(dict(ops._objects or {}))
        self.lib.afs_set_fallbacks(
            ctypes.cast(py_getattr, ctypes.c_void_p),
            ctypes.cast(py_read_buf, ctypes.c_void_p) if has_read_buf else None,
        )
        ops.getattr = ctypes.cast(self.lib.afs_getattr, getattr_type)
        if has_read_buf:
            ops.read_buf = ctypes.cast(self.lib.afs_read_buf, type(py_read_buf))
        self.installed = True
        self.reads_in_c = has_read_buf

    def patch_main(self, mfusepy: Any) -> Callable[[], None]:
        """Have mfusepy's next fuse_main_real call go through `install` (mfusepy builds the
        operations struct inside FUSE() and hands it straight to libfuse). Returns the undo."""
        real = mfusepy.fuse_main_real

        def main(argc: int, argv: Any, ops_p: Any, size: int, ctx: Any) -> int:
            self._kept.append(ops_p)  # holds mfusepy's struct, and so its callbacks
            try:
                self.install(ops_p.contents)
            except Exception:  # never a reason not to mount: Python answers everything then
                log.exception("C fast path not installed; every request is answered in Python")
            return int(real(argc, argv, ops_p, size, ctx))

        mfusepy.fuse_main_real = main

        def undo() -> None:
            mfusepy.fuse_main_real = real

        return undo

    # -- what Python answered -------------------------------------------------------------------
    def remember_attrs(self, path: str, st: Stat) -> None:
        """A version file's stat, as getattr returned it (times in ns; st_ino set)."""
        if not self.installed or self._full:
            return
        attr = Attr(
            st["st_mode"],
            st.get("st_nlink", 1),
            st.get("st_uid", 0),
            st.get("st_gid", 0),
            st.get("st_size", 0),
            st.get("st_blocks", 0),
            st.get("st_blksize", 0),
            st["st_ino"],
            int(st.get("st_atime", 0)),
            int(st.get("st_mtime", 0)),
            int(st.get("st_ctime", 0)),
        )
        self._put(self.lib.afs_put_attr(_raw(path), ctypes.byref(attr)))

    def remember_object(self, path: str, blob: str, st: os.stat_result) -> None:
        """The version file at `path` is the whole object `blob`, verified when it had the
        fingerprint `st` (an fstat of it, taken at its seal check)."""
        if not self.installed or not self.reads_in_c or self._full:
            return
        check = BlobCheck(st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)
        self._put(self.lib.afs_put_blob(_raw(path), _raw(blob), ctypes.byref(check)))

    def _put(self, res: int) -> None:
        if res != 0 and not self._full:
            self._full = True
            log.info("C fast path table full (%d paths): further paths are read in Python", LIMIT)

    # -- upkeep ---------------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        out = (ctypes.c_uint64 * 4)()
        self.lib.afs_counters(out)
        return {
            "lookups": out[0],
            "reads": out[1],
            "bytes_read": out[2],
            "fallbacks": out[3],
            "paths": int(self.lib.afs_entries()),
        }

    def take_touched(self) -> list[str]:
        """Objects read in C since the last call."""
        out: list[str] = []
        buf = ctypes.create_string_buffer(1 << 16)
        cursor = ctypes.c_size_t(0)
        while cursor.value != ctypes.c_size_t(-1).value:
            used = self.lib.afs_take_touched(buf, len(buf), ctypes.byref(cursor))
            out += [p.decode("utf-8", "surrogateescape") for p in buf.raw[:used].split(b"\0") if p]
        return out

    def start_touching(self, touch: Callable[[str], None]) -> None:
        """Every TOUCH_EVERY seconds, `touch` each object read in C meanwhile (its LRU use)."""
        if not self.installed or self._toucher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(TOUCH_EVERY):
                self._touch_all(touch)

        self._toucher = threading.Thread(target=loop, name="afs-fast-touch", daemon=True)
        self._toucher.start()

    def _touch_all(self, touch: Callable[[str], None]) -> None:
        for blob in self.take_touched():
            try:
                touch(blob)
            except OSError as e:  # evicted meanwhile: nothing to mark
                log.debug("no LRU touch for %s: %s", blob, e)

    def close(self, touch: Callable[[str], None] | None = None) -> None:
        """At unmount: the last touches, then the table is freed (libfuse no longer calls)."""
        self._stop.set()
        if self._toucher is not None:
            self._toucher.join(5)
        if touch is not None and self.installed:
            self._touch_all(touch)
        self.lib.afs_clear()


class NoFastPath:
    """Records nothing: every request is answered in Python."""

    installed = False
    reads_in_c = False

    def patch_main(self, mfusepy: Any) -> Callable[[], None]:
        return lambda: None

    def remember_attrs(self, path: str, st: Stat) -> None:
        pass

    def remember_object(self, path: str, blob: str, st: os.stat_result) -> None:
        pass

    def counters(self) -> dict[str, int]:
        return {}

    def start_touching(self, touch: Callable[[str], None]) -> None:
        pass

    def close(self, touch: Callable[[str], None] | None = None) -> None:
        pass


NO_FAST_PATH = NoFastPath()


def _raw(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")
