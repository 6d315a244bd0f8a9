"""Named exceptions of the draft (write) side.

Each one derives from OSError with the errno a file system caller should see, so the FUSE layer
can pass them through unchanged and a shell user reads the usual message (EXDEV for a rename
across drafts, EBUSY for a commit while files are open for writing...), while Python callers
(CLI, tests) can catch what they can act on.
"""

from __future__ import annotations

import errno

from artifactfs.errors import ArtifactFSError


class DraftError(ArtifactFSError, OSError):
    """Base class: something about a draft (write directory) went wrong."""

    default_errno = errno.EIO

    def __init__(self, message: str, err: int | None = None) -> None:
        super().__init__(err if err is not None else self.default_errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DraftNotFoundError(DraftError):
    """No such draft, or no such path inside a draft."""

    default_errno = errno.ENOENT


class DraftBusyError(DraftError):
    """The draft cannot be committed now (files open for writing, a mount owns the write dir)."""

    default_errno = errno.EBUSY


class DraftForeignError(DraftError):
    """The draft belongs to another registry than the one this mount serves."""

    default_errno = errno.EBUSY


class CrossDraftRenameError(DraftError):
    """A rename would move bytes between two drafts or between a draft and a version."""

    default_errno = errno.EXDEV


class DraftStateError(DraftError):
    """The on-disk state of a draft is unreadable (the draft is left untouched for inspection)."""

    default_errno = errno.EIO


class DraftOptionError(DraftError):
    """A commit option (type, description, metadata, aliases) is not valid."""

    default_errno = errno.EINVAL


class DraftNameError(DraftError):
    """A new entity, project or draft name breaks the name rules."""

    default_errno = errno.EINVAL


class CommitError(DraftError):
    """A commit failed; the draft stays in place and the message says why."""

    default_errno = errno.EIO


class MountRequestTimeout(DraftError):
    """The running mount did not answer a commit request in time."""

    default_errno = errno.ETIMEDOUT
