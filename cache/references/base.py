"""The one small interface every reference scheme implements, and what they share."""

from __future__ import annotations

import base64
import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from artifactfs.cache.source import BlobSource
from artifactfs.errors import (
    TooManyObjectsError,
)

DEFAULT_MAX_OBJECTS = 10_000
"""W&B's default limit on the objects one add_reference may expand to (directories, prefixes)."""

_HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class ReferenceObject:
    """One object named by a reference URI, as resolved at add time.

    `path` is its name relative to the URI (empty when the URI names a single object); `digest`
    is what the scheme provides (md5 base64 for file:// with checksum, the ETag for http/s3, the
    md5 base64 for gs, a hash of the URI otherwise); `extra` carries pins such as
    {"versionID": ..., "etag": ...}.
    """

    uri: str
    path: str
    digest: str
    size: int | None
    extra: dict[str, Any] = field(default_factory=dict)


class ReferenceHandler(ABC):
    """One URI scheme: what a URI names now (add time) and how to read it later (read time)."""

    schemes: tuple[str, ...] = ()

    @abstractmethod
    def resolve(
        self, uri: str, checksum: bool, max_objects: int | None, config: Any
    ) -> list[ReferenceObject]:
        """The objects `uri` names, expanding directories/prefixes up to `max_objects`."""

    @abstractmethod
    def open(
        self, uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any
    ) -> BlobSource:
        """A source for one object, pinned to what was recorded at add time where possible.

        Reads raise DigestMismatchError when the object changed since and the scheme can tell.
        """

    def verifiable_md5_hex(self, uri: str, digest: str, extra: dict[str, Any]) -> str | None:
        """The MD5 (hex) the bytes must have, when the recorded digest really is one."""
        return None


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def uri_digest(uri: str) -> str:
    """Digest of a reference known only by name: base64 MD5 of the URI string (as W&B does
    for file:// with checksum=False)."""
    return md5_b64(uri.encode("utf-8"))


def b64_to_hex(digest: str) -> str | None:
    """Hex form of a base64 MD5, or None when `digest` is not one."""
    try:
        raw = base64.b64decode(digest, validate=True)
    except (ValueError, TypeError):
        return None
    return raw.hex() if len(raw) == 16 else None


def hex_to_b64(md5_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")


def is_hex_md5(value: str) -> bool:
    return bool(_HEX_MD5.match(value))


def check_max_objects(count: int, max_objects: int, uri: str) -> None:
    if count > max_objects:
        raise TooManyObjectsError(
            f"{uri} names more than {max_objects} objects; pass a larger max_objects to "
            "add_reference (or reference a narrower directory/prefix)"
        )
