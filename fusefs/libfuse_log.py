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
from typing import Any

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


def route_libfuse_log(libfuse: Any) -> bool:
    """Install the handler on `libfuse` (a ctypes.CDLL); False where libfuse has no
    `fuse_set_log_func` (libfuse 2, 3.0-3.6), which then prints as it always did."""
    setter = getattr(libfuse, "fuse_set_log_func", None)
    if setter is None or _installed:
        return bool(_installed)
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
    setter.argtypes = [_LOG_FUNC]
    setter.restype = None
    setter(callback)
    _installed.append(callback)
    return True
