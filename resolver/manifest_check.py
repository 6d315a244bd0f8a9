"""The one manifest validator: what makes a manifest acceptable, for every reader of one.

WHY one module: a manifest comes from the store, so it may be hostile or broken, and it is read
in four places — the Python API and CLI (`Manifest.from_bytes`), the mount's index builder
(manifest_index, parsing fast or through JSON), a prebuilt index fetched from the store
(`index_check.check_untrusted`), and garbage collection. Each used to apply its own rules:
the mount skipped bad entries and showed a partial version with no error, listed a file and a
directory of one name twice, read a negative size as empty, and let a 10^18-byte size evict
the shared cache. Here is the single rule set; every reader refuses the whole manifest when it
breaks one (the mount answers EIO on the version and says why).

A manifest is W&B's manifest v1 (DESIGN §5) and must have:
* `version` 1 and `contents` an object of path -> entry; no path twice (after normalization,
  and not even as duplicate JSON keys);
* safe paths (`names.check_entry_path`), and no path that is both a file and a directory;
* entries that are objects with a non-empty string `digest` — for stored content (no `ref`) the
  base64 of an MD5 — an optional `size` that is an integer in [0, MAX_ENTRY_SIZE], an optional
  string `ref`, an optional object `extra` and an optional string `birthArtifactID`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import operator
import re
from collections.abc import Iterable, Sequence
from typing import Any

from artifactfs.errors import InvalidManifestError, InvalidPathError
from artifactfs.resolver.names import check_entry_path

MAX_ENTRY_SIZE = 1 << 50
"""1 PiB: no single file of an artifact is bigger; anything above is a broken or hostile size."""
MANIFEST_ERRORS = (InvalidManifestError, InvalidPathError)
"""What the validator raises: paths break the path rules, everything else the manifest's."""
ENTRY_KEYS = {"digest", "size", "ref", "extra", "birthArtifactID"}
_B64_MD5 = re.compile(rb"[A-Za-z0-9+/]{21}[AQgw]==")
_B64_MD5_LINES = re.compile(rb"(?:[A-Za-z0-9+/]{21}[AQgw]==\n)*")
_B64_MD5_RUN = re.compile(rb"(?:[A-Za-z0-9+/]{21}[AQgw]==)*")
MD5_B64_LEN = 24


def all_md5_b64(blob: bytes) -> bool:
    """True when `blob` is base64 MD5s back to back (an index's meta section, all bare)."""
    return _B64_MD5_RUN.fullmatch(blob) is not None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidPathError(f"manifest names {key!r} twice")
            seen.add(key)
    return out


def load_json(raw: bytes) -> Any:
    """Parse manifest JSON, refusing duplicate keys (json.loads would keep the last silently)."""
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, InvalidPathError):
            raise
        raise InvalidManifestError(f"manifest is not valid JSON: {e}") from e
    except RecursionError:  # thousands of nested arrays: hostile, never a W&B manifest
        raise InvalidManifestError("manifest JSON is nested too deeply") from None


def is_md5_b64(digest: str) -> bool:
    """True for the base64 of 16 bytes (what W&B stores as a stored entry's digest)."""
    if not _B64_MD5.fullmatch(digest.encode("ascii", "replace")):
        return False
    try:
        return len(base64.b64decode(digest, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def check_size(path: str, size: Any) -> int | None:
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidManifestError(f"manifest entry {path!r}: size {size!r} is not an integer")
    if not 0 <= size <= MAX_ENTRY_SIZE:
        raise InvalidManifestError(
            f"manifest entry {path!r}: size {size} is outside 0..{MAX_ENTRY_SIZE}"
        )
    return size


def check_entry(path: Any, value: Any) -> str:
    """The canonical path of one entry, or the error that makes the manifest unusable."""
    canonical = check_entry_path(path)
    if not isinstance(value, dict):
        raise InvalidManifestError(f"manifest entry {canonical!r} is not an object")
    unknown = set(value) - ENTRY_KEYS
    if unknown:
        raise InvalidManifestError(f"manifest entry {canonical!r}: unknown keys {sorted(unknown)}")
    digest, ref = value.get("digest"), value.get("ref")
    if not isinstance(digest, str) or not digest:
        raise InvalidManifestError(
            f"manifest entry {canonical!r}: digest {digest!r} is not a string"
        )
    if ref is not None and (not isinstance(ref, str) or not ref):
        raise InvalidManifestError(f"manifest entry {canonical!r}: ref {ref!r} is not a string")
    if ref is None and not is_md5_b64(digest):
        raise InvalidManifestError(
            f"manifest entry {canonical!r}: digest {digest[:40]!r} is not a base64 MD5"
        )
    check_size(canonical, value.get("size"))
    extra = value.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise InvalidManifestError(f"manifest entry {canonical!r}: extra is not an object")
    birth = value.get("birthArtifactID")
    if birth is not None and not isinstance(birth, str):
        raise InvalidManifestError(f"manifest entry {canonical!r}: birthArtifactID is not a string")
    return canonical


def check_tree(sorted_paths: Sequence[bytes]) -> None:
    """Refuse duplicates and a path that is a file and also a directory of other paths.
    `sorted_paths` are UTF-8 paths in bytewise order (the index's order)."""
    if any(map(operator.ge, sorted_paths, itertools.islice(sorted_paths, 1, None))):
        for a, b in itertools.pairwise(sorted_paths):
            if a >= b:
                name = a.decode("utf-8", "replace")
                if a == b:
                    raise InvalidPathError(f"manifest names {name!r} twice")
                raise InvalidPathError(f"manifest index out of order at {name!r}")
    dirs: set[bytes] = set()
    last = b""
    for p in sorted_paths:
        d = p.rpartition(b"/")[0]
        if d == last:  # sorted: a directory's files come together
            continue
        last = d
        while d and d not in dirs:
            dirs.add(d)
            d = d.rpartition(b"/")[0]
    # Few directories, many files: look each directory up (no set of every path in memory).
    clash = [d for d in dirs if _contains(sorted_paths, d)]
    if clash:
        name = min(clash).decode("utf-8", "replace")
        raise InvalidPathError(f"manifest names {name!r} both as a file and as a directory")


def _contains(sorted_paths: Sequence[bytes], key: bytes) -> bool:
    lo, hi = 0, len(sorted_paths)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_paths[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(sorted_paths) and sorted_paths[lo] == key


def check_md5_digests(digests: Iterable[bytes]) -> None:
    """Every one of `digests` (stored entries' digests, bytes) is a base64 MD5 (one C scan)."""
    joined = b"\n".join(digests) + b"\n"
    if joined != b"\n" and not _B64_MD5_LINES.fullmatch(joined):
        bad = next(d for d in joined.split(b"\n") if d and not _B64_MD5.fullmatch(d))
        raise InvalidManifestError(f"manifest digest {bad[:40]!r} is not a base64 MD5")


def check_manifest(data: Any) -> dict[str, dict[str, Any]]:
    """Validate parsed manifest JSON; return its contents keyed by canonical path."""
    if not isinstance(data, dict):
        raise InvalidManifestError("manifest is not a JSON object")
    if data.get("version") != 1:
        raise InvalidManifestError(f"unsupported manifest version {data.get('version')!r}")
    contents = data.get("contents")
    if contents is None:
        contents = {}
    if not isinstance(contents, dict):
        raise InvalidManifestError("manifest contents is not an object")
    out: dict[str, dict[str, Any]] = {}
    for path, value in contents.items():
        canonical = check_entry(path, value)
        if canonical in out:
            raise InvalidPathError(f"manifest names {canonical!r} twice")
        out[canonical] = value
    check_tree(sorted(p.encode("utf-8", "surrogateescape") for p in out))
    return out


def check_rows(paths: Sequence[bytes], metas: Sequence[bytes] | None, sizes: Sequence[int]) -> None:
    """The rules for a manifest in the index's row form (manifest_index): paths sorted, unique
    and never both file and directory; sizes -1 (unknown) or in range; each meta either a bare
    base64 MD5 (a stored entry of digest and size) or an entry's JSON, valid and agreeing with
    its row's size. Path safety is checked where paths are made canonical (the builder) or
    scanned (index_check.check_untrusted). `metas` None: every meta is a bare digest, checked."""
    if not len(paths) == len(sizes) or (metas is not None and len(metas) != len(paths)):
        raise InvalidManifestError("manifest index rows disagree in length")
    if sizes and (min(sizes) < -1 or max(sizes) > MAX_ENTRY_SIZE):
        bad = next(z for z in sizes if not -1 <= z <= MAX_ENTRY_SIZE)
        raise InvalidManifestError(f"manifest entry size {bad} is outside 0..{MAX_ENTRY_SIZE}")
    check_tree(paths)
    if metas is None:
        return
    check_md5_digests(m for m in metas if m[:1] != b"{")
    for i, meta in enumerate(metas):
        if meta[:1] != b"{":
            continue
        path = paths[i].decode("utf-8", "surrogateescape")
        value = load_json(meta)
        check_entry(path, value)
        size = value.get("size")
        if (-1 if size is None else size) != sizes[i]:
            raise InvalidManifestError(f"manifest entry {path!r}: size disagrees with its row")
