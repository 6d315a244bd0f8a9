"""file:// references: files and directories on a filesystem every reader can see (NFS, ...).

Digests follow W&B: with checksum=True the base64 MD5 of the bytes (so fills are verified);
with checksum=False the base64 MD5 of the file's absolute `file://` URI, so the digest changes
only when the path does and nothing is read at add time (and nothing can be verified: the
bytes are whatever the file holds when read).

A referenced file is read with the rights of whoever asks (fileaccess.py): a process reading
for itself must be able to read it (`FileSource` checks before anything else, so a refused
caller learns nothing about the file), and the mount checks the caller of each read. The size
recorded at add time is checked before any byte is served; the message never says the real
size (it would leak a file the caller may not read).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from artifactfs.cache.references.base import (
    DEFAULT_MAX_OBJECTS,
    ReferenceHandler,
    ReferenceObject,
    b64_to_hex,
    check_max_objects,
    uri_digest,
)
from artifactfs.cache.references.fileaccess import Caller, may_read
from artifactfs.cache.source import BlobSource, Progress
from artifactfs.errors import DigestMismatchError, ObjectNotFoundError, ReferenceAccessError

HASH_CHUNK = 1 << 20


def uri_to_path(uri: str) -> str:
    """`file:///a/b`, `file://localhost/a/b` -> `/a/b` (percent-escapes decoded)."""
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        return unquote(f"//{parsed.netloc}{parsed.path}")
    return unquote(parsed.path)


def local_file_of(ref: str | None) -> str | None:
    """The local path a `file://` reference names; None for anything else."""
    if ref is None or ref[:5].lower() != "file:":
        return None
    return uri_to_path(ref)


def check_readable(path: str, uri: str, caller: Caller | None = None) -> None:
    """ReferenceAccessError (EACCES) unless `caller` (default: this process) may read the
    referenced file itself; says nothing else about the file."""
    if not may_read(path, caller or Caller.current()):
        raise ReferenceAccessError(f"referenced file {uri}: permission denied")


def _md5_file_b64(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return base64.b64encode(h.digest()).decode("ascii")


class FileSource:
    """Bytes of a local file that this process may read itself; checks the size recorded at
    add time before any read."""

    def __init__(self, path: str, size: int | None, uri: str) -> None:
        self.path = path
        self.uri = uri
        check_readable(path, uri)
        try:
            actual = os.path.getsize(path)
        except FileNotFoundError as e:
            raise ObjectNotFoundError(f"referenced file {uri} no longer exists") from e
        if size is not None and actual != size:
            raise DigestMismatchError(
                f"referenced file {uri} changed since it was logged (it is not the {size} bytes recorded)"
            )

    def read_range(self, start: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            return os.pread(f.fileno(), length, start)

    def copy_to(self, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        total = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                fileobj.write(chunk)
                total += len(chunk)
                if progress:
                    progress(len(chunk))
        return total


class FileHandler(ReferenceHandler):
    schemes = ("file",)

    def resolve(
        self, uri: str, checksum: bool, max_objects: int | None, config: Any
    ) -> list[ReferenceObject]:
        limit = max_objects or DEFAULT_MAX_OBJECTS
        root = uri_to_path(uri)

        def entry(physical: str, rel: str, ref: str) -> ReferenceObject:
            digest = (
                _md5_file_b64(physical)
                if checksum
                else uri_digest(Path(physical).resolve().as_uri())
            )
            return ReferenceObject(ref, rel, digest, os.path.getsize(physical))

        if os.path.isfile(root):
            return [entry(root, "", uri)]
        if not os.path.isdir(root):
            raise ObjectNotFoundError(f"{uri}: no such file or directory")
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                physical = os.path.join(dirpath, name)
                if not os.path.isfile(physical):  # sockets, fifos, broken symlinks
                    continue
                found.append((physical, os.path.relpath(physical, root).replace(os.sep, "/")))
                check_max_objects(len(found), limit, uri)
        base = uri.rstrip("/")
        return [entry(physical, rel, f"{base}/{rel}") for physical, rel in found]

    def open(
        self, uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any
    ) -> BlobSource:
        return FileSource(uri_to_path(uri), size, uri)

    def verifiable_md5_hex(self, uri: str, digest: str, extra: dict[str, Any]) -> str | None:
        # With checksum=False the digest is the MD5 of the URI, not of the bytes: never verify
        # against it. Both are base64 MD5s, so tell them apart by recomputing the URI's.
        if digest == uri_digest(Path(uri_to_path(uri)).resolve().as_uri()):
            return None
        return b64_to_hex(digest)


__all__ = ["FileHandler", "FileSource", "check_readable", "local_file_of", "uri_to_path"]
