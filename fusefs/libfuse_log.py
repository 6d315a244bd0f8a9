"""libfuse's own messages go to the mount log, not straight to the user's terminal.

libfuse prints through `fuse_log()` to stderr unless a program installs a handler
(`fuse_set_log_func`, libfuse >= 3.7). A foreground mount on libfuse 3.14 otherwise greets its
user with `Ignoring invalid max threads value 4294967295 > max (100000).`: `fuse_main()` copies
its parsed options through the pre-3.12 struct and hands the multi-threaded loop an unset
`max_threads`, which the loop refuses and replaces with its default. Nothing is wrong, nothing
can be passed to avoid it, and the line alarms people; so libfuse's lines are logged like ours
(errors still reach a foreground terminal), and known-harmless ones only at debug level.
"""

from __future__ import annotations

import ctypes
import logging
import platform
from typing import Any

from artifactfs.fusefs.libfuse_abi import LibfuseAbi

log = logging.getLogger("artifactfs.libfuse")

HARMLESS = ("Ignoring invalid max threads value",)
"""Messages libfuse prints about its own defaults (see the module docstring)."""

# enum fuse_log_level: the syslog levels
_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL, 3: logging.ERROR}
_LEVELS |= {4: logging.WARNING, 5: logging.INFO, 6: logging.INFO, 7: logging.DEBUG}

_LOG_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_installed: list[Any] = []  # the callback must outlive every libfuse thread: never freed


def level_of(fuse_level: int, text: str) -> int:
    """The logging level for one libfuse line."""
    if text.startswith(HARMLESS):
        return logging.DEBUG
    return _LEVELS.get(fuse_level, logging.WARNING)


def route_libfuse_log(abi: LibfuseAbi) -> bool:
    """Install the handler on the loaded libfuse; False where it has no `fuse_set_log_func`
    (libfuse 2, 3.0-3.6; bound through libfuse_abi, the one room for libfuse's C ABI), or
    where a `va_list` is not passed as a pointer (the handler hands it to vsnprintf as one:
    true of x86-64's ABI, which is what this was checked on); libfuse then prints as always."""
    if _installed:
        return True
    setter = abi.function("fuse_set_log_func")
    if setter is None or platform.machine() not in ("x86_64", "AMD64"):
        return False
    libc = ctypes.CDLL(None)
    vsnprintf = libc.vsnprintf
    vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    vsnprintf.restype = ctypes.c_int

    def handler(level: int, fmt: bytes | None, args: int | None) -> None:
        try:
            buf = ctypes.create_string_buffer(1024)
            vsnprintf(buf, len(buf), fmt, args)  # va_list: passed on as the pointer it is
            text = buf.value.decode(errors="replace").rstrip()
            log.log(level_of(level, text), "libfuse: %s", text)
        except Exception:  # never raise into C
            pass

    callback = _LOG_FUNC(handler)
    setter(ctypes.cast(callback, ctypes.c_void_p))
    _installed.append(callback)
    return True
