"""The named exceptions of artifactfs, shared by every layer.

One small hierarchy so callers can catch what they can act on: a bad name is the user's to fix,
a lost race is the registry's to retry, an unreachable backend is the operator's. Each subclass
also derives from the builtin a Python user would expect (ValueError, LookupError, OSError), so
generic handlers keep working. This module imports nothing from the package: every layer may use it.
"""

from __future__ import annotations


class ArtifactFSError(Exception):
    """Base class of every error artifactfs raises on purpose."""


class InvalidNameError(ArtifactFSError, ValueError):
    """An entity, project, artifact name, type or alias breaks the naming rules."""


class InvalidPathError(ArtifactFSError, ValueError):
    """A path inside an artifact is absolute, contains `..`, NUL, or is otherwise unsafe."""


class InvalidManifestError(ArtifactFSError, ValueError):
    """A manifest breaks the manifest rules (resolver/manifest_check.py): a bad size or digest,
    an entry that is not an object, invalid JSON. Unsafe paths raise InvalidPathError."""


class ArtifactNotFoundError(ArtifactFSError, LookupError):
    """No such entity, project, collection, version, alias or digest in the registry."""


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
    does not exist (W&B's `wandb.Error` cases)."""


class ArtifactTypeMismatchError(ArtifactFSError, ValueError):
    """A collection already holds artifacts of another type."""


class DigestMismatchError(ArtifactFSError, OSError):
    """Bytes read from a backend or cache do not match the digest the manifest promises."""


class BackendError(ArtifactFSError, OSError):
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
