"""A compact, mmapped, on-disk index of one manifest, so huge versions mount without a dict per entry.

WHY: a version with 1,000,000 entries parsed into `Manifest` costs ~1 KB of Python objects per
entry and seconds of GC churn, in a process that lives for days. The mount instead parses each
manifest once (in a child process when it is big, so the parse's peak memory dies with it) into
a flat file of sorted arrays, and maps that file read-only. Only the pages a lookup or a listing
touches become resident, and they are clean, shared, evictable page cache. Manifests are
immutable, so the index is built once per manifest key, kept in the cache dir and reused by every
later mount, online or offline.

Layout (little-endian, all sections 8-byte aligned):

    header   magic "AFSIDX01", n, then the offsets of the sections below (u64 each)
    pathoff  u64[n+1]  entry i's path is paths[pathoff[i]:pathoff[i+1]] (UTF-8)
    metaoff  u64[n+1]  entry i's manifest JSON value is metas[metaoff[i]:metaoff[i+1]]
    sizes    i64[n]    entry size, -1 when the manifest does not say
    paths    bytes     entry paths sorted bytewise (= code point order)
    metas    bytes     compact JSON of each entry's value, in the same order

Directories are implicit: `d` is a directory when some path starts with `d/`. Because all paths
under a prefix are contiguous in sorted order, a listing walks its children and jumps over each
subdirectory with one binary search, so listing the root of 1000 dirs x 1000 files touches ~20k
paths, not 1M.
"""

from __future__ import annotations

import itertools
import json
import logging
import mmap
import operator
import re
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactfs.errors import InvalidManifestError
from artifactfs.fsutil import atomic_path
from artifactfs.resolver.manifest import EXECUTABLE, ManifestEntry
from artifactfs.resolver.manifest_check import (
    MANIFEST_ERRORS,
    check_manifest,
    check_rows,
    load_json,
)
from artifactfs.resolver.names import check_entry_path

log = logging.getLogger(__name__)

MAGIC = b"AFSIDX02"
"""02: indexes of validated manifests only (manifest_check); an 01 index may hold a hostile
manifest's leftovers (skipped entries), so it is rebuilt."""
_HEADER = struct.Struct("<8s7Q")  # magic, n, pathoff, metaoff, sizes, paths, metas, end
SUBPROCESS_THRESHOLD = 8 << 20
"""Manifests bigger than this (bytes of JSON) are indexed in a child process."""


class IndexError_(Exception):
    """An index file is missing, truncated or of another format (it is then rebuilt)."""


def _clean_path(path: str) -> str:
    """Canonical entry path; the cheap test covers the manifests we and W&B write."""
    simple = (
        path
        and "//" not in path
        and "\x00" not in path
        and "\\" not in path
        and path[0] != "/"
        and path[-1] not in "/."
        and "./" not in path
    )
    if simple:
        return path
    return check_entry_path(path)


_SIMPLE_ENTRY = re.compile(rb'"([^"\\]*)":\{"digest":"([^"\\]*)"(?:,"size":(\d+))?\}[,}]')


@dataclass
class _Rows:
    """Parsed entries as parallel lists (paths UTF-8, metas: bare digest or JSON object)."""

    paths: list[bytes]
    metas: list[bytes]
    sizes: list[int]


def _parse_fast(raw: bytes) -> _Rows | None:
    """Entries of a compact manifest whose values are all `{"digest":..,"size":..}`, or None.

    WHY: json.loads of a 1M-entry manifest alone takes 2 s building a million dicts; one C-level
    regex scan takes 0.4 s. The scan must cover the contents object exactly (checked by length),
    so anything unusual (references, extras, escapes, other key orders) falls back to json.
    """
    at = raw.find(b'"contents":{')
    if at < 0 or raw.count(b'"contents":') != 1:
        return None
    start = at + len(b'"contents":{')
    end = raw.rfind(b"}", start)
    end = raw.rfind(b"}", start, end)  # closes contents; the last one closes the manifest
    if end < 0 or raw[end + 1 :].strip() != b"}":
        return None
    if raw[start:end].find(b"\\") >= 0:
        return None
    found = _SIMPLE_ENTRY.findall(raw, start, end + 1)
    if not found:
        return None if raw[start:end].strip() else _Rows([], [], [])
    paths = [f[0] for f in found]
    digests = [f[1] for f in found]
    size_txt = [f[2] for f in found]
    covered = sum(map(len, paths)) + sum(map(len, digests)) + sum(map(len, size_txt))
    covered += len(found) * len(b'"":{"digest":""},') + sum(1 for z in size_txt if z) * len(
        b',"size":'
    )
    if covered - 1 != end - start:  # the last entry ends with } not ,
        return None
    sizes = [int(z) if z else -1 for z in size_txt]
    return _Rows(paths, digests, sizes)


def _parse_json(raw: bytes) -> _Rows:
    """Rows of a manifest parsed and validated as JSON (manifest_check: refused whole)."""
    contents = check_manifest(load_json(raw))
    rows = _Rows([], [], [])
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for path, value in contents.items():
        size = value.get("size")
        simple = set(value) <= {"digest", "size"}
        rows.paths.append(path.encode("utf-8", "surrogateescape"))
        rows.metas.append(value["digest"].encode() if simple else dumps(value).encode())
        rows.sizes.append(-1 if size is None else int(size))
    return rows


def _check_fast_paths(rows: _Rows) -> bool:
    """The fast path skips per-entry validation only when every path is already canonical."""
    joined = b"\n".join(rows.paths)
    if b"//" in joined or b"\x00" in joined or b"./" in joined or b"\\" in joined:
        return False
    return all(p and p[0] != 47 and p[-1] not in (46, 47) for p in rows.paths)


def build_index_bytes(raw: bytes, out: Path) -> int:
    """Parse manifest JSON `raw` and write its index atomically to `out`; return entry count."""
    rows = _parse_fast(raw)
    if rows is None or not _check_fast_paths(rows):
        rows = _parse_json(raw)
    paths, metas, sizes_l = rows.paths, rows.metas, rows.sizes
    n = len(paths)
    if any(map(operator.ge, paths, itertools.islice(paths, 1, None))):
        order = sorted(range(n), key=paths.__getitem__)
        paths = [paths[i] for i in order]
        metas = [metas[i] for i in order]
        sizes_l = [sizes_l[i] for i in order]
    check_rows(paths, metas, sizes_l)  # the same rules as the API's (manifest_check)
    pathoff = array("Q", itertools.accumulate(map(len, paths), initial=0))
    metaoff = array("Q", itertools.accumulate(map(len, metas), initial=0))
    sizes = array("q", sizes_l)
    path_blob = b"".join(paths)
    meta_blob = b"".join(metas)
    del rows, paths, metas, sizes_l

    def pad(x: int) -> int:
        return (x + 7) & ~7

    o_pathoff = _HEADER.size
    o_metaoff = o_pathoff + 8 * (n + 1)
    o_sizes = o_metaoff + 8 * (n + 1)
    o_paths = o_sizes + 8 * n
    o_metas = pad(o_paths + len(path_blob))
    end = o_metas + len(meta_blob)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        f.write(_HEADER.pack(MAGIC, n, o_pathoff, o_metaoff, o_sizes, o_paths, o_metas, end))
        f.write(pathoff.tobytes())
        f.write(metaoff.tobytes())
        f.write(sizes.tobytes())
        f.write(path_blob)
        f.write(b"\0" * (o_metas - o_paths - len(path_blob)))
        f.write(meta_blob)
    return n


INVALID_EXIT = 3
"""The indexing child's exit status for a manifest that breaks the rules (stderr says which)."""


def build_index_file(manifest_path: Path, out: Path) -> None:
    """Index a manifest file; big ones in a child process so its parse peak never stays in ours.
    A manifest that breaks the rules raises InvalidManifestError/InvalidPathError either way."""
    if manifest_path.stat().st_size <= SUBPROCESS_THRESHOLD:
        build_index_bytes(manifest_path.read_bytes(), out)
        return
    run_child("artifactfs.resolver.manifest_index", manifest_path, out)


def run_child(module: str, *paths: Path) -> None:
    """Run `python -m module paths...` (indexing or checking a big index out of process);
    its INVALID_EXIT means a manifest rule was broken (InvalidManifestError with its reason)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == INVALID_EXIT:
        lines = proc.stderr.strip().splitlines() or ["manifest refused"]
        raise InvalidManifestError(lines[-1][:2000])
    if proc.returncode != 0:
        raise IndexError_(f"{module} on {paths[0]} failed: {proc.stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class Child:
    """One name in a directory listing of a version."""

    name: str
    is_dir: bool
    index: int
    """Entry number for files; for directories the first entry below it."""


class ManifestIndex:
    """Read-only view of an index file: lookups by path and directory listings, all via mmap."""

    def __init__(self, path: Path) -> None:
        self.file = path
        with open(path, "rb") as f:
            try:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError as e:  # empty file
                raise IndexError_(f"{path}: empty index") from e
        if len(self._mm) < _HEADER.size:
            raise IndexError_(f"{path}: truncated index")
        magic, n, o_po, o_mo, o_sz, o_p, o_m, end = _HEADER.unpack_from(self._mm, 0)
        if magic != MAGIC or end != len(self._mm):
            raise IndexError_(f"{path}: not an index of this format")
        self.n = n
        mv = memoryview(self._mm)
        self._pathoff = mv[o_po : o_po + 8 * (n + 1)].cast("Q")
        self._metaoff = mv[o_mo : o_mo + 8 * (n + 1)].cast("Q")
        self._sizes = mv[o_sz : o_sz + 8 * n].cast("q")
        self._o_paths = o_p
        self._o_metas = o_m
        self._entry_cache: dict[int, ManifestEntry] = {}
        self._lock = threading.Lock()
        self.total_size = None  # computed lazily: summing 1M sizes is 50 ms we rarely need

    def __len__(self) -> int:
        return self.n

    def path_bytes(self, i: int) -> bytes:
        return self._mm[self._o_paths + self._pathoff[i] : self._o_paths + self._pathoff[i + 1]]

    def path(self, i: int) -> str:
        return self.path_bytes(i).decode("utf-8", "surrogateescape")

    def size(self, i: int) -> int | None:
        s = self._sizes[i]
        return None if s < 0 else s

    def meta(self, i: int) -> dict[str, Any]:
        """The manifest value of entry i (a bare digest is stored for the common case)."""
        a, b = self._metaoff[i], self._metaoff[i + 1]
        raw = self._mm[self._o_metas + a : self._o_metas + b]
        if raw[:1] == b"{":
            return json.loads(raw)
        value: dict[str, Any] = {"digest": raw.decode()}
        size = self.size(i)
        if size is not None:
            value["size"] = size
        return value

    def executable(self, i: int) -> bool:
        """Does entry i carry `extra.executable` (drafts keep the exec bit there)? Cheap for
        the common entry, whose value is a bare digest."""
        raw = self.meta_bytes(i)
        if raw[:1] != b"{" or b'"executable"' not in raw:
            return False
        extra = json.loads(raw).get("extra") or {}
        return bool(extra.get(EXECUTABLE))

    def meta_bytes(self, i: int) -> bytes:
        """Entry i's stored value as is: equal bytes mean an equal entry (diffs compare these
        before parsing anything)."""
        a, b = self._metaoff[i], self._metaoff[i + 1]
        return self._mm[self._o_metas + a : self._o_metas + b]

    def entry(self, i: int) -> ManifestEntry:
        """The ManifestEntry of entry i (a few recently used ones are kept)."""
        with self._lock:
            hit = self._entry_cache.get(i)
        if hit is not None:
            return hit
        v = self.meta(i)
        e = ManifestEntry(
            path=self.path(i),
            digest=str(v["digest"]),
            size=v.get("size"),
            ref=v.get("ref"),
            extra=v.get("extra") or {},
            birth_artifact_id=v.get("birthArtifactID"),
        )
        with self._lock:
            if len(self._entry_cache) > 1024:
                self._entry_cache.clear()
            self._entry_cache[i] = e
        return e

    def _lower_bound(self, key: bytes, lo: int = 0, hi: int | None = None) -> int:
        hi = self.n if hi is None else hi
        pb = self.path_bytes
        while lo < hi:
            mid = (lo + hi) // 2
            if pb(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def find(self, rel: str) -> int:
        """Entry number of file `rel`, or -1."""
        key = rel.encode("utf-8", "surrogateescape")
        i = self._lower_bound(key)
        return i if i < self.n and self.path_bytes(i) == key else -1

    def is_dir(self, rel: str) -> bool:
        """True for "" (the version root) and any proper prefix directory of an entry path."""
        if not rel:
            return True
        prefix = rel.encode("utf-8", "surrogateescape") + b"/"
        i = self._lower_bound(prefix)
        return i < self.n and self.path_bytes(i).startswith(prefix)

    def children(self, rel: str) -> Iterator[Child]:
        """Names directly inside directory `rel` ("" = version root), each once."""
        prefix = rel.encode("utf-8", "surrogateescape") + b"/" if rel else b""
        plen = len(prefix)
        i = self._lower_bound(prefix) if prefix else 0
        pb = self.path_bytes
        n = self.n
        while i < n:
            p = pb(i)
            if not p.startswith(prefix):
                break
            slash = p.find(b"/", plen)
            if slash < 0:
                yield Child(p[plen:].decode("utf-8", "surrogateescape"), False, i)
                i += 1
            else:
                name = p[plen:slash]
                yield Child(name.decode("utf-8", "surrogateescape"), True, i)
                # skip everything under prefix+name/: '0' is the byte after '/'
                i = self._lower_bound(p[:slash] + b"0", i + 1)

    def under(self, rel: str) -> range:
        """Entry numbers of every file at any depth below directory `rel` ("" = the whole
        version): one contiguous run of the sorted paths, found by two binary searches."""
        if not rel:
            return range(self.n)
        prefix = rel.encode("utf-8", "surrogateescape") + b"/"
        return range(self._lower_bound(prefix), self._lower_bound(prefix[:-1] + b"0"))

    def dir_count(self, rel: str) -> int:
        """Number of entries at any depth below `rel` (for du-like summaries)."""
        return len(self.under(rel))

    def size_sum(self, entries: range) -> int:
        """Bytes of a run of entries (`under(rel)`); entries of unknown size count as 0."""
        sizes = self._sizes[entries.start : entries.stop].tolist()
        return sum(sizes) + sizes.count(-1)

    def close(self) -> None:
        for mv in (self._pathoff, self._metaoff, self._sizes):
            mv.release()
        try:
            self._mm.close()
        except BufferError:
            pass  # a reader still holds a slice; the map goes with the object


def open_or_build(manifest_path: Path, index_path: Path) -> ManifestIndex:
    """Open the index of a manifest file, (re)building it when missing or unreadable."""
    try:
        return ManifestIndex(index_path)
    except (FileNotFoundError, IndexError_):
        pass
    build_index_file(manifest_path, index_path)
    return ManifestIndex(index_path)


def _main(argv: list[str]) -> int:
    try:
        build_index_bytes(Path(argv[0]).read_bytes(), Path(argv[1]))
    except MANIFEST_ERRORS as e:
        print(e, file=sys.stderr)
        return INVALID_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
