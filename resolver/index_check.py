"""Checking an index the mount did not build (a prebuilt one fetched from the store).

WHY: for versions of 100k+ entries the committer stores the manifest's compact index beside it
(resolver/manifest_index.py), and a mount maps it instead of parsing the JSON. It comes from the
store like a manifest, so it must never be a way around the manifest rules: its paths get the
path rules (scanned in C over the mapped blob), and its rows the same checks the builder applies
to a manifest it indexes (manifest_check.check_rows: order, duplicates, file/directory clashes,
sizes, digests). A failing index is not used; the mount indexes the manifest itself, which is
then refused or accepted on its own merits.

The row checks need a Python object per entry, so for big indexes they run in a child process
(as big builds do), keeping their peak out of the mount's memory.
"""

from __future__ import annotations

import itertools
import operator
import sys
from pathlib import Path

from artifactfs.errors import InvalidPathError
from artifactfs.resolver.manifest_check import (
    MANIFEST_ERRORS,
    MD5_B64_LEN,
    all_md5_b64,
    check_rows,
)
from artifactfs.resolver.manifest_index import (
    INVALID_EXIT,
    IndexError_,
    ManifestIndex,
    run_child,
)
from artifactfs.resolver.names import check_entry_path

IN_PROCESS_ENTRIES = 50_000
"""Indexes up to this many entries are checked in the mount process; bigger ones in a child."""


def check_untrusted(index: ManifestIndex) -> None:
    """IndexError_ unless a fetched index passes every rule a manifest must (see above)."""
    try:
        if len(index) <= IN_PROCESS_ENTRIES:
            check_index_rows(index)
        else:
            run_child("artifactfs.resolver.index_check", index.file)
    except MANIFEST_ERRORS as e:
        raise IndexError_(f"{index.file}: {e}") from e


def check_index_rows(index: ManifestIndex) -> None:
    """The path scans, the offsets' consistency, then manifest_check.check_rows."""
    _check_paths(index)
    n = len(index)
    po, mo = index._pathoff, index._metaoff
    if any(map(operator.gt, po[:-1], po[1:])) or any(map(operator.gt, mo[:-1], mo[1:])):
        raise InvalidPathError(f"{index.file}: offsets out of order")
    if n and (index._o_paths + po[n] > index._o_metas or index._o_metas + mo[n] > len(index._mm)):
        raise InvalidPathError(f"{index.file}: offsets past the end of the index")
    blob = index._mm[index._o_paths : index._o_paths + po[n]]
    paths = list(map(blob.__getitem__, map(slice, po[:-1], po[1:])))
    meta_blob = index._mm[index._o_metas : index._o_metas + mo[n]]
    if len(meta_blob) == MD5_B64_LEN * n and all_md5_b64(meta_blob):
        # the common case, every entry a bare digest: one C scan instead of a list of them
        check_rows(paths, None, list(index._sizes))
        return
    metas = list(map(meta_blob.__getitem__, map(slice, mo[:-1], mo[1:])))
    check_rows(paths, metas, list(index._sizes))


_INNER_UNSAFE = (b"\x00", b"//", b"/./", b"/../")


def _check_paths(index: ManifestIndex) -> None:
    """Every path passes the rule `check_entry_path` enforces on manifests: no empty path, NUL,
    absolute or drive path, `.`/`..` component, doubled or trailing slash.

    Scans run in C over the mapped path blob, without a Python object per path (the mount's
    memory budget is ~60 bytes per entry). An inner pattern spanning two paths can only arise
    when one of them is itself unsafe, so a blob-wide search never lets a bad path through."""
    n = len(index)
    if n == 0:
        return
    po = index._pathoff
    blob = index._mm[index._o_paths : index._o_paths + po[n]]
    bad: str | None = next((repr(p) for p in _INNER_UNSAFE if p in blob), None)
    starts, ends = po[:-1], po[1:]
    if bad is None and any(map(operator.eq, starts, ends)):
        bad = "empty path"
    if bad is None:
        firsts = bytes(map(blob.__getitem__, starts))
        lasts = bytes(map(blob.__getitem__, map(operator.sub, ends, itertools.repeat(1))))
        if b"/" in firsts or b"\\" in firsts or b"/" in lasts:
            bad = "absolute path or trailing slash"
        elif b"." in firsts or b"." in lasts or b":" in blob:  # rare: check those paths alone
            for i in range(n):
                path = blob[po[i] : po[i + 1]]
                if path[:1] == b"." or path[-1:] == b"." or b":" in path:
                    try:
                        if check_entry_path(path.decode("utf-8", "surrogateescape")) != path.decode(
                            "utf-8", "surrogateescape"
                        ):
                            bad = f"non-canonical path {path!r}"
                    except InvalidPathError as e:
                        bad = str(e)
                    if bad:
                        break
    if bad is not None:
        raise InvalidPathError(f"{index.file}: unsafe entry path in a fetched index: {bad}")


def _main(argv: list[str]) -> int:
    index = ManifestIndex(Path(argv[0]))
    try:
        check_index_rows(index)
    except MANIFEST_ERRORS as e:
        print(e, file=sys.stderr)
        return INVALID_EXIT
    finally:
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
