"""The error policy of every FUSE callback (issue 4), as one decorator.

Unknown names -> ENOENT; writes into versions, aliases or the namespace -> EROFS; backend
failures and digest mismatches -> EIO with the cause in the mount log. Every callback of
ArtifactOperations goes through `guard`, so no exception ever reaches libfuse as a traceback on
the user's terminal; only unexpected ones are logged with a traceback, and only to the log.

Apart from the callbacks so the policy is read, and changed, in one place.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy

from artifactfs.errors import ArtifactFSError, BackendError, DigestMismatchError
from artifactfs.fusefs.catalog import NotFound, Unavailable
from artifactfs.fusefs.threadstate import keep_thread_state

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def guard(method: F) -> F:
    """Map our exceptions to errnos; log causes; never let a traceback reach the terminal.
    The decorated method's object has `stats` (MountStats): calls and backend errors are
    counted (`upcalls` in stats.json: how tests see what a read cost)."""

    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        keep_thread_state()  # threadstate.py: no thread state made and freed per request
        self.stats.upcall(name)
        try:
            return method(self, *args)
        except OSError as e:
            if isinstance(e, (DigestMismatchError, BackendError, Unavailable)):
                self.stats.add(backend_errors=1)
                log.error("%s %s: %s", method.__name__, args[:1], e)
                raise mfusepy.FuseOSError(errno.EIO) from None
            if e.errno:
                raise
            log.error("%s %s: %s", method.__name__, args[:1], e)
            raise mfusepy.FuseOSError(errno.EIO) from None
        except NotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except (ArtifactFSError, LookupError, ValueError) as e:
            log.info("%s %s: %s", method.__name__, args[:1], e)
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except Exception:
            log.exception("unexpected error in %s %s", method.__name__, args[:1])
            raise mfusepy.FuseOSError(errno.EIO) from None

    return wrapper  # type: ignore[return-value]


def erofs() -> OSError:
    return mfusepy.FuseOSError(errno.EROFS)
