"""W&B names our objects lack raise an error that says so, never Python's bare AttributeError.

A W&B user calling `run.upsert_artifact(...)` or reading `artifact.history_step` should learn that
artifactfs does not implement it and where the migration guide is, not guess whether they
misspelt something. The error is an AttributeError too, so `hasattr()` and `getattr(x, name,
default)` (how integrations probe for features) keep working. Private and dunder names get the
plain AttributeError (copy, pickle and integrations probe those).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artifactfs.errors import MIGRATION_DOC, NotSupportedAttributeError


class ReportsMissingNames:
    """Mixin: a missing public attribute raises NotSupportedAttributeError naming it."""

    if not TYPE_CHECKING:  # type checkers still see only the real attributes

        def __getattr__(self, name: str) -> Any:
            if any(name in vars(klass) for klass in type(self).__mro__):
                # A property of ours raised AttributeError (ArtifactNotLoggedError: W&B's
                # status errors are AttributeErrors) and Python fell back here: raise its error.
                return object.__getattribute__(self, name)
            cls = type(self).__name__
            if name.startswith("_"):
                raise AttributeError(f"{cls!r} object has no attribute {name!r}")
            raise NotSupportedAttributeError(
                f"artifactfs does not implement {cls}.{name} (see {MIGRATION_DOC})"
            )
