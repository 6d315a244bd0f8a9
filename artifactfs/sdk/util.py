"""W&B's `wandb.util` helpers that scripts and integrations call (`wandb.util.generate_id`,
`make_artifact_name_safe`) and its terminal messages (`wandb.termlog`, `termwarn`, `termerror`).

The terminal messages go through `logging` (logger `artifactfs.term`), so a library that calls
them follows the application's logging set-up; warnings and errors reach stderr even without
one (Python's last-resort handler), as W&B's do.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Sequence
from typing import Any

from artifactfs.errors import MIGRATION_DOC, UnsupportedError

_ID_ALPHABET = string.ascii_lowercase + string.digits
term = logging.getLogger("artifactfs.term")


def generate_id(length: int = 8) -> str:
    """A random run id as W&B makes them: lowercase letters and digits, 8 by default."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def make_artifact_name_safe(name: str) -> str:
    """W&B's rule: characters other than letters, digits, `_`, `-` and `.` become `_`; at most
    128 characters."""
    return re.sub(r"[^a-zA-Z0-9_\-.]", "_", name)[:128]


def to_forward_slash_path(path: str) -> str:
    """W&B's helper: a path with `/` separators (artifact paths always use them)."""
    return path.replace("\\", "/")


def termlog(
    string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True
) -> None:
    """W&B's `wandb.termlog`: an informational line (logged at INFO)."""
    term.info("%s", string)


def termwarn(string: str, repeat: bool = True, prefix: bool = True) -> None:
    """W&B's `wandb.termwarn`: a warning line (logged at WARNING)."""
    term.warning("%s", string)


def termerror(string: str, repeat: bool = True, prefix: bool = True) -> None:
    """W&B's `wandb.termerror`: an error line (logged at ERROR)."""
    term.error("%s", string)


NO_OP_REQUIREMENTS = ("service", "core", "legacy-service")
"""`wandb.require()` names that choose how W&B runs its own process: nothing to do here."""


def require(requirement: str | Sequence[str] | None = None, experiment: Any = None) -> None:
    """W&B's `wandb.require`: the process-model switches (`"service"`, `"core"`) are accepted;
    any other experimental feature raises UnsupportedError naming it."""
    names = [requirement] if isinstance(requirement, str) else list(requirement or [])
    for name in names:
        if name not in NO_OP_REQUIREMENTS:
            raise UnsupportedError(
                f"artifactfs does not implement wandb.require({name!r}); see {MIGRATION_DOC}"
            )
