"""Parsing and validating artifact names, types, aliases and in-artifact paths.

Every string that ends up in a registry key, a mount path or a download path passes through here
first, so a bad name fails early with a clear message and a hostile manifest path can never
escape its root (DESIGN §1, brief: security).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from artifactfs.errors import InvalidNameError, InvalidPathError

_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,127}$")
_VERSION = re.compile(r"^v(0|[1-9][0-9]*)$")
_DIGEST = re.compile(r"^[0-9a-f]{32}$")
RESERVED_ALIASES = ("latest",)
NAME_MAX = 255
"""Bytes (UTF-8) in one path component: the Linux file systems' limit, so any longer artifact
path could never be downloaded or mounted."""
PATH_MAX = 4096
"""Bytes in a whole path, NUL included (Linux): artifact paths are kept below it."""


def shown(text: str, limit: int = 60) -> str:
    """`text` for a one-line message: its repr, cut to `limit` characters when longer (a
    10,000-character name must not fill the terminal)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def check_name(value: str, what: str = "name") -> str:
    """Return `value` if it is a valid entity, project, artifact name or type, else raise."""
    if not isinstance(value, str) or not _NAME.match(value):
        shown_value = shown(value) if isinstance(value, str) else repr(value)
        raise InvalidNameError(
            f"invalid {what} {shown_value}: use 1-128 letters, digits, '_', '-' or '.', "
            "not starting with '.'"
        )
    return value


ALIAS_MAX = 128
"""Characters in an alias: `name:alias` stays one file name (NAME_MAX bytes) in the mount."""


def check_alias_text(alias: str) -> str:
    """W&B's alias rule: any text without `/` or `:` (`"epoch 1"`, YOLOv5's, is fine). Also
    refused here: control characters (they would reach a terminal through `ls`) and more than
    ALIAS_MAX characters. Registry keys encode what S3 keys should not hold (keys.py)."""
    if (
        not isinstance(alias, str)
        or not alias
        or len(alias) > ALIAS_MAX
        or any(c in "/:" or ord(c) < 32 or ord(c) == 127 for c in alias)
    ):
        shown_value = shown(alias) if isinstance(alias, str) else repr(alias)
        raise InvalidNameError(
            f"invalid alias {shown_value}: use 1-{ALIAS_MAX} characters, "
            "without '/', ':' or control characters"
        )
    return alias


def check_alias(alias: str) -> str:
    """W&B's alias rule (check_alias_text); `vN` is reserved for versions themselves."""
    check_alias_text(alias)
    if _VERSION.match(alias):
        raise InvalidNameError(f"invalid alias {alias!r}: 'vN' names a version, not an alias")
    return alias


def version_number(alias: str) -> int | None:
    """`"v3"` -> 3; anything else -> None."""
    m = _VERSION.match(alias)
    return int(m.group(1)) if m else None


def is_digest(value: str) -> bool:
    """True for a hex artifact digest (32 lowercase hex characters)."""
    return bool(_DIGEST.match(value))


@dataclass(frozen=True)
class ArtifactRef:
    """A parsed `entity/project/name:alias` (entity, project and alias optional)."""

    name: str
    entity: str | None = None
    project: str | None = None
    alias: str | None = None

    def with_defaults(self, entity: str, project: str, alias: str = "latest") -> ArtifactRef:
        return ArtifactRef(
            self.name, self.entity or entity, self.project or project, self.alias or alias
        )

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    def __str__(self) -> str:
        prefix = "/".join(p for p in (self.entity, self.project) if p)
        base = f"{prefix}/{self.name}" if prefix else self.name
        return f"{base}:{self.alias}" if self.alias else base


def parse_artifact_name(text: str) -> ArtifactRef:
    """Parse `name`, `name:alias`, `project/name:alias` or `entity/project/name:alias`.

    A bare 32-hex digest parses as a digest lookup (name empty, alias the digest).
    """
    if not isinstance(text, str) or not text:
        raise InvalidNameError(f"invalid artifact name {text!r}")
    if is_digest(text):
        return ArtifactRef(name="", alias=text)
    base, sep, alias = text.partition(":")
    if sep and not alias:
        raise InvalidNameError(f"invalid artifact name {text!r}: empty alias after ':'")
    parts = base.split("/")
    if len(parts) > 3:
        raise InvalidNameError(
            f"invalid artifact name {text!r}: expected [entity/][project/]name[:alias]"
        )
    for part, what in zip(parts, ("entity", "project", "name")[-len(parts) :], strict=True):
        check_name(part, what)
    if alias and not (version_number(alias) is not None or is_digest(alias)):
        check_alias_text(alias)
    entity = parts[0] if len(parts) == 3 else None
    project = parts[-2] if len(parts) >= 2 else None
    return ArtifactRef(name=parts[-1], entity=entity, project=project, alias=alias or None)


def check_entry_path(path: str) -> str:
    """Normalize an artifact-relative path and refuse anything that could escape its root.

    Refused: empty paths, NUL, absolute paths, `..` components, backslash-rooted paths, and
    the empty/`.` path itself, a component over NAME_MAX bytes and a path of PATH_MAX bytes or
    more (no Linux file system could hold them). Accepted paths come back in canonical posix
    form (no `./`, no doubled or trailing slashes).
    """
    if not isinstance(path, str) or not path:
        raise InvalidPathError(f"invalid artifact path {path!r}: empty")
    if "\x00" in path:
        raise InvalidPathError(f"invalid artifact path {shown(path)}: contains NUL")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        raise InvalidPathError(
            f"invalid artifact path {shown(path)}: absolute paths are not allowed"
        )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidPathError(f"invalid artifact path {shown(path)}: '..' is not allowed")
    if not parts:
        raise InvalidPathError(f"invalid artifact path {path!r}: names no file")
    try:
        longest = max(len(p.encode("utf-8", "surrogateescape")) for p in parts)
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no file system name
        raise InvalidPathError(f"invalid artifact path {shown(path)}: not valid Unicode") from None
    if longest > NAME_MAX:
        raise InvalidPathError(
            f"invalid artifact path {shown(path)}: a file or directory name has {longest} "
            f"bytes, at most {NAME_MAX} are allowed"
        )
    total = len(path.encode("utf-8", "surrogateescape"))
    if total >= PATH_MAX:
        raise InvalidPathError(
            f"invalid artifact path {shown(path)}: {total} bytes, at most {PATH_MAX - 1} "
            "are allowed"
        )
    return posixpath.join(*parts)
