"""A draft's commit options as text: what `getfattr`/`setfattr` on the draft directory see.

The options (type, description, metadata, aliases) are kept in the draft's state (state.py) as
values; here they are rendered to and parsed from the bytes of an attribute, with the same name
rules as everywhere else (a type is a name, aliases are aliases, metadata a JSON object). The
mount names these attributes `user.artifact.<key>`; the prefix is the front end's business.

Apart from the Draft so that the text form is defined once, whatever shows it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from artifactfs.drafts.draft import Draft
from artifactfs.drafts.errors import DraftOptionError
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.names import check_alias, check_name

OPTION_KEYS = ("type", "description", "metadata", "aliases")
"""The settable ones; `base_version` is shown too, read-only."""


def option_values(draft: Draft) -> dict[str, bytes]:
    """Every attribute the draft directory shows, as bytes (unset options are absent)."""
    o = draft.options
    out: dict[str, bytes] = {}
    if o.type:
        out["type"] = o.type.encode()
    if o.description is not None:
        out["description"] = o.description.encode()
    if o.metadata is not None:
        out["metadata"] = json.dumps(o.metadata, sort_keys=True).encode()
    if o.aliases:
        out["aliases"] = json.dumps(o.aliases).encode()
    if draft.state.base_version is not None:
        out["base_version"] = f"v{draft.state.base_version}".encode()
    return out


def set_option(draft: Draft, key: str, value: bytes, label: str | None = None) -> None:
    """Parse `value` (UTF-8 text) as option `key` and keep it; DraftOptionError (EINVAL),
    naming `label`, when it is not valid."""
    opts = replace(draft.options)
    try:
        setattr(opts, key, parse_option(key, value.decode()))
    except (ValueError, ArtifactFSError) as e:
        raise DraftOptionError(f"{label or key}: {e}") from None
    draft.set_options(opts)


def clear_option(draft: Draft, key: str) -> None:
    opts = replace(draft.options)
    setattr(opts, key, [] if key == "aliases" else None)
    draft.set_options(opts)


def parse_option(key: str, text: str) -> Any:
    """Attribute text -> option value (aliases: JSON list or comma-separated)."""
    if key == "type":
        return check_name(text.strip(), "type") if text.strip() else None
    if key == "description":
        return text
    if key == "metadata":
        value = json.loads(text) if text.strip() else None
        if value is not None and not isinstance(value, dict):
            raise ValueError("metadata must be a JSON object")
        return value
    text = text.strip()
    items = json.loads(text) if text.startswith("[") else [a for a in text.split(",") if a]
    return [check_alias(str(a).strip()) for a in items]
