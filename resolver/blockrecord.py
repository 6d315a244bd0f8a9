"""Block-digest records: the per-block SHA-256 of a version's big entries, stored beside it.

WHY a record of its own: the W&B manifest and its digest must stay exactly W&B's (DESIGN §5),
so the digests that let a ranged read be checked (cache/blockdigests.py) live in a separate
JSON object, content-addressed (`blockdigests/sha256/<2>/<62>.json`, keys.py) and named by its
SHA-256 in the version record (`VersionRecord.block_digests`). A reader checks the object it
fetched against that digest, so it is as trustworthy as the record itself; the key is derived
from the digest, so a record cannot make a reader fetch anything else.

    {"format": 1, "algorithm": "sha256", "block_size": 4194304,
     "objects": {"<md5 hex of the entry>": {"size": N, "digests": "<base64 of the raw digests>"}}}

Objects are keyed by the entry's MD5 (its blob), not its path: the digests are a property of
the bytes, so a later version (a draft's commit, a copy) inherits them for content it does not
upload again, and `BlockDigestBook` answers for any version loaded in this process. Entries
with none (versions logged by W&B or by older artifactfs, content a commit could not hash) are
verified whole before a byte is served (cache/blockdigests.ReadCheck).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from artifactfs.cache.blockdigests import ALGORITHM, DIGEST_BLOCK, BlockDigests, digests_of_file
from artifactfs.errors import BackendError, InvalidManifestError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Store
from artifactfs.resolver.manifest import ManifestEntry, b64_to_hex
from artifactfs.resolver.records import VersionRecord

log = logging.getLogger(__name__)

FORMAT = 1
MIN_SIZE = DIGEST_BLOCK + 1
"""Entries of more than one block get digests (smaller ones are always read whole)."""
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
HASH_THREADS = 4


class BlockDigestError(InvalidManifestError):
    """A block-digest record that is not what its version names (wrong digest, bad JSON)."""


def record_key(sha256_hex: str) -> str:
    """The store key of the record with this SHA-256 (BlockDigestError if it is not one)."""
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.match(sha256_hex):
        raise BlockDigestError(f"block digest reference {sha256_hex!r} is not a SHA-256")
    return keys.block_digests_key(sha256_hex)


def encode(objects: dict[str, BlockDigests]) -> bytes:
    body: dict[str, Any] = {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "block_size": DIGEST_BLOCK,
        "objects": {
            md5: {"size": d.size, "digests": base64.b64encode(d.digests).decode("ascii")}
            for md5, d in sorted(objects.items())
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode(raw: bytes, sha256_hex: str) -> dict[str, BlockDigests]:
    """The digests of a record fetched for a version that names it by `sha256_hex`."""
    if hashlib.sha256(raw).hexdigest() != sha256_hex:
        raise BlockDigestError(f"block digest record {sha256_hex[:12]}… does not match its digest")
    try:
        body = json.loads(raw)
        if body.get("format") != FORMAT or body.get("algorithm") != ALGORITHM:
            raise ValueError(f"unknown format {body.get('format')!r}/{body.get('algorithm')!r}")
        block_size = int(body["block_size"])
        out = {}
        for md5, value in body["objects"].items():
            if not _MD5_HEX.match(md5):
                raise ValueError(f"object name {md5!r} is not an MD5")
            digests = base64.b64decode(value["digests"], validate=True)
            out[md5] = BlockDigests(int(value["size"]), block_size, digests)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as e:
        raise BlockDigestError(f"block digest record {sha256_hex[:12]}… is invalid: {e}") from e
    return out


class BlockDigestBook:
    """The block digests of every version this process loaded, by the entries' MD5."""

    def __init__(self, store: Store, object_dir: str | os.PathLike[str] | None = None) -> None:
        self.store = store
        self._dir = Path(object_dir) if object_dir is not None else None
        self._by_md5: dict[str, BlockDigests] = {}
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    def get(self, md5_hex: str) -> BlockDigests | None:
        return self._by_md5.get(md5_hex)

    def load(self, record: VersionRecord) -> None:
        """Learn the digests `record` names (once per record; from the on-disk object cache
        when an earlier process fetched them). A record that cannot be had or does not check
        out is logged and skipped: its big entries are then verified whole."""
        ref = record.block_digests
        if ref is None or (isinstance(ref, str) and ref in self._loaded):
            return
        try:
            key = record_key(ref)  # BlockDigestError unless a SHA-256 (hex string)
            objects = decode(self._raw(key), ref)
        except (BlockDigestError, BackendError, OSError) as e:
            log.warning(
                "block digests of %s not used (its big entries are verified whole): %s",
                record.full_name,
                e,
            )
            return
        with self._lock:
            self._by_md5.update(objects)
            self._loaded.add(ref)

    def _raw(self, key: str) -> bytes:
        local = self._dir / key if self._dir is not None else None
        if local is not None and local.is_file():
            return local.read_bytes()
        raw, _ = self.store.get(key)
        if local is not None:
            try:
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}")
                tmp.write_bytes(raw)
                os.replace(tmp, local)
            except OSError as e:
                log.debug("cannot keep %s on disk: %s", key, e)
        return raw

    def for_commit(
        self, entries: Iterable[ManifestEntry], inherit: Iterable[VersionRecord] = ()
    ) -> dict[str, BlockDigests]:
        """The digests a new version records: hashed from the staged file of each big stored
        entry, else taken from the versions it builds on (`inherit`), else none."""
        for record in inherit:
            self.load(record)
        todo: dict[str, ManifestEntry] = {}
        out: dict[str, BlockDigests] = {}
        for e in entries:
            if not e.stored or (e.size or 0) < MIN_SIZE:
                continue
            md5 = b64_to_hex(e.digest, e.path)
            known = self.get(md5)
            if e.local_path is not None:
                todo.setdefault(md5, e)
            elif known is not None and known.block_size == DIGEST_BLOCK:
                out[md5] = known
        if todo:
            with ThreadPoolExecutor(max_workers=min(HASH_THREADS, len(todo))) as pool:
                hashed = pool.map(lambda e: digests_of_file(e.local_path or ""), todo.values())
                for (md5, e), digests in zip(todo.items(), hashed, strict=True):
                    try:
                        out[md5] = BlockDigests(e.size or 0, DIGEST_BLOCK, digests)
                    except ValueError as err:  # the staged file changed: the upload refuses it
                        log.warning("no block digests for %s: %s", e.path, err)
        return out

    def remember(self, sha256_hex: str, objects: dict[str, BlockDigests]) -> None:
        """What this process committed is known without fetching it back."""
        with self._lock:
            self._by_md5.update(objects)
            self._loaded.add(sha256_hex)
