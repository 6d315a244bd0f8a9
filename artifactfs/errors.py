"""The named exceptions of artifactfs, shared by every layer.

One small hierarchy so callers can catch what they can act on: a bad name is the user's to fix,
a lost race is the registry's to retry, an unreachable backend is the operator's. Each subclass
also derives from the builtin a Python user would expect (ValueError, LookupError, OSError), so
generic handlers keep working. This module imports nothing from the package: every layer may use it.

W&B's own classes (`wandb.Error`, `wandb.errors.CommError`, `UsageError`, `UnsupportedError`,
`AuthenticationError`) are here too, and ours derive from them where W&B raises them: every error
of ours is a `wandb.Error`; a missing artifact or a failing backend is a `CommError` (W&B's
answer from its server), so `except wandb.errors.CommError:` in W&B code catches it.
"""

from __future__ import annotations

import errno

MIGRATION_DOC = "docs/MIGRATING_FROM_WANDB.md"
"""Where an error about a W&B feature we do not implement points the user."""


class Error(Exception):
    """W&B's base error (`wandb.Error`, `wandb.errors.Error`). No `__init__` of its own, so the
    builtins mixed into our subclasses (OSError's errno form) keep their constructors."""

    @property
    def message(self) -> str:
        """W&B's `Error.message`: the error's text (subclasses may set their own)."""
        return str(self.__dict__.get("_message", self))

    @message.setter
    def message(self, value: str) -> None:
        self.__dict__["_message"] = value


class CommError(Error):
    """W&B's `wandb.errors.CommError`: its server could not answer (here: the registry)."""

    exc: BaseException | None = None
    """W&B's attribute: the underlying exception, when there is one (it is also __cause__)."""


class AuthenticationError(CommError):
    """W&B's `wandb.errors.AuthenticationError` (our backends take credentials from boto3's
    chain or the file system; raised by nothing here, defined for `except` clauses)."""


class ArtifactFSError(Error):
    """Base class of every error artifactfs raises on purpose."""


class InvalidNameError(ArtifactFSError, ValueError):
    """An entity, project, artifact name, type or alias breaks the naming rules."""


class InvalidPathError(ArtifactFSError, ValueError):
    """A path inside an artifact is absolute, contains `..`, NUL, or is otherwise unsafe."""


class InvalidManifestError(ArtifactFSError, ValueError):
    """A manifest breaks the manifest rules (resolver/manifest_check.py): a bad size or digest,
    an entry that is not an object, invalid JSON. Unsafe paths raise InvalidPathError."""


class InvalidRecordError(ArtifactFSError, ValueError):
    """A record read from the registry (collection, version, alias, run) is not what this
    version writes: invalid JSON, a missing or mistyped field, or a store key (such as a
    version's `manifest_key`) outside the registry's key layout (resolver/keys.py)."""


class ArtifactNotFoundError(ArtifactFSError, CommError, LookupError):
    """No such entity, project, collection, version, alias or digest in the registry (W&B's
    server answers that with a CommError, so it is one)."""


class InvalidMetadataError(ArtifactFSError, ValueError):
    """Artifact metadata is not a JSON-serializable mapping of at most 100 string keys."""


class TooManyObjectsError(ArtifactFSError, ValueError):
    """A directory or prefix reference names more objects than `max_objects` allows."""


class ArtifactFinalizedError(ArtifactFSError, AttributeError):
    """The artifact was finalized (logged); its contents can no longer change. An AttributeError
    as in W&B, whose status errors are, so `hasattr()` and `getattr(x, name, default)` work."""


class ArtifactNotLoggedError(ArtifactFSError, AttributeError):
    """The operation needs a logged artifact, and this one was never logged (an AttributeError,
    as W&B's is: attributes such as `version` do not exist before logging)."""


class ArtifactHasAliasesError(ArtifactFSError, ValueError):
    """`delete()` of a version that still has aliases (`latest` included) without
    `delete_aliases=True`, as W&B refuses it."""


class RunNotFoundError(ArtifactNotFoundError):
    """No run with that path in the registry."""


class UsageError(ArtifactFSError):
    """A call out of order: `log()` before `init()` or after `finish()`, resuming a run that
    does not exist (W&B's `wandb.errors.UsageError`)."""


class UnsupportedError(UsageError):
    """W&B's `wandb.errors.UnsupportedError`: a W&B feature artifactfs does not implement. The
    message names it and points to docs/MIGRATING_FROM_WANDB.md."""


class NotSupportedAttributeError(UnsupportedError, AttributeError):
    """A `wandb.<name>` (or `run.<name>`) artifactfs does not implement: an AttributeError too,
    so `hasattr(wandb, name)` (how integrations probe for features) answers False."""


class ArtifactTypeMismatchError(ArtifactFSError, ValueError):
    """A collection already holds artifacts of another type."""


class DigestMismatchError(ArtifactFSError, OSError, ValueError):
    """Bytes read from a backend or cache do not match the digest the manifest promises, or a
    reference changed since it was logged. Also a ValueError, as W&B raises for a changed
    reference (the mount still answers EIO: it is an OSError first)."""


class BackendError(ArtifactFSError, CommError, OSError):
    """The registry store or a reference source failed (unreachable, timed out, refused)."""


class NotDownloadableError(BackendError):
    """A reference whose scheme is only tracked (its URI hashed): its bytes cannot be fetched."""


class ObjectNotFoundError(BackendError, LookupError):
    """A key is absent from the store."""


class PreconditionFailedError(BackendError):
    """A create-only write found the key present, or a compare-and-swap found another etag."""


class AliasMovedError(PreconditionFailedError):
    """An alias was not where the caller saw it (another writer moved it since): nothing was
    changed; read again and decide again."""


class ConditionalWritesUnsupportedError(BackendError):
    """The store accepted a conditional write it should have refused: writing would be unsafe."""


class ReadOnlyBackendError(BackendError):
    """The store cannot be written (for instance the HTTP backend)."""


class ReferenceAccessError(ArtifactFSError, PermissionError):
    """The user who asks may not read the local file a `file://` reference names (EACCES)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)

    def __str__(self) -> str:
        return str(self.args[1])


class CacheError(ArtifactFSError, OSError):
    """The local cache cannot hold or serve an object (disk full, corrupt file, permissions)."""


class ConfigError(ArtifactFSError, ValueError):
    """The configuration file or an environment variable holds an invalid value."""


class VerifyError(ArtifactFSError, ValueError):
    """A directory does not hold exactly an artifact's files; lists every difference at once."""

    def __init__(
        self, root: str, modified: list[str], missing: list[str], extra: list[str]
    ) -> None:
        self.root = root
        self.modified = modified
        self.missing = missing
        self.extra = extra
        parts = [
            f"{what} {', '.join(repr(p) for p in paths[:5])}"
            + (f" (+{len(paths) - 5})" if len(paths) > 5 else "")
            for what, paths in (
                ("modified:", modified),
                ("missing:", missing),
                ("not in the artifact:", extra),
            )
            if paths
        ]
        super().__init__(f"{root} does not match the artifact: {'; '.join(parts)}")


class DestinationFullError(ArtifactFSError, OSError):
    """A download's destination has no room left for the files (errno ENOSPC)."""


class InvalidDigestError(ArtifactFSError, ValueError):
    """A manifest entry's digest is not what its kind requires (a base64 MD5 for stored files)."""
