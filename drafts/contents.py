"""What a draft would commit: its full contents as a W&B manifest, and how that differs from the base.

A draft is a local directory; a version is a manifest of files. The translation, decided here:

* Regular files become entries (copied files hashed, placeholders keep their stored entry).
  Hard links are entries sharing one digest (each inode is hashed once).
* The executable bit (owner's x) is kept as `extra["executable"] = true`; entries' `extra` is
  where W&B itself keeps per-entry fields (`etag`, `versionID` of references) and it is not part
  of the artifact digest, so the digest stays W&B's. Other modes, owners, times, xattrs and empty
  directories are dropped.
* Symlinks are committed as what they resolve to *inside the draft*, as W&B's `add_dir` does
  (`os.walk(followlinks=True)`): a link to a file is an entry with that file's digest, a link to
  a directory holds its files under the link's path. Links that dangle, leave the draft
  (absolute targets, `..` above the draft root), or loop (a link into one of its own parent
  directories, more than 40 hops) are skipped and listed (`SkippedLink`) in the commit's result
  and log: the daemon never reads a host file through a user's link.
* FIFOs, sockets and device nodes live while the draft does; a version has no place for them,
  so they are skipped and listed the same way.

Apart from the view because it is the one translation from the layers into a manifest.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol

from artifactfs.drafts.overlay import Overlay
from artifactfs.drafts.staging import StagingArea
from artifactfs.resolver.manifest import EXECUTABLE, Manifest, ManifestEntry


class _Node(Protocol):
    @property
    def kind(self) -> str: ...


class DraftView(Protocol):
    """What the translation needs of a draft (view.DraftView; a protocol: view imports us)."""

    staging: StagingArea
    overlay: Overlay

    def lookup(self, path: str) -> _Node | None: ...
    def listdir(self, path: str) -> list[str]: ...


EXEC_KEY = EXECUTABLE
"""Key in an entry's `extra`: true when the file was executable (by its owner) in the draft."""
MAX_HOPS = 40
"""Symlinks followed while resolving one path, as the kernel's ELOOP limit."""
MAX_LINKED_ENTRIES = 1_000_000
"""Entries that directory symlinks may add to one commit (links to big trees multiply)."""
HASH_CHUNK = 1 << 20


def is_executable(entry: ManifestEntry) -> bool:
    return entry.executable


def with_exec(extra: dict, executable: bool) -> dict:
    out = {k: v for k, v in extra.items() if k != EXEC_KEY}
    if executable:
        out[EXEC_KEY] = True
    return out


def stored_mode(entry: ManifestEntry) -> int:
    """Permission bits an unchanged stored file shows in a draft."""
    return entry.file_mode


def md5_b64_of_fd(fd: int) -> tuple[str, int]:
    """W&B's entry digest of an open file, and its size (read from offset 0)."""
    h = hashlib.md5()
    offset = 0
    while block := os.pread(fd, HASH_CHUNK, offset):
        h.update(block)
        offset += len(block)
    return base64.b64encode(h.digest()).decode("ascii"), offset


@dataclass(frozen=True)
class SkippedLink:
    """A symlink the commit could not turn into entries, or a special file (`kind`)."""

    path: str
    target: str
    reason: str  # dangling | outside the draft | loop | too many entries | special file
    kind: str = "symlink"  # or FIFO | socket | character device | block device

    def describe(self) -> str:
        if self.kind != "symlink":
            return f"{self.path}: {self.kind}, not committed (a version holds files only)"
        return f"{self.path} -> {self.target}: {self.reason}, not committed"


def special_kind(mode: int) -> str | None:
    """What a FIFO, socket or device node is called in a commit's list of skipped entries."""
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return None


@dataclass
class Contents:
    manifest: Manifest
    skipped: list[SkippedLink] = field(default_factory=list)


@dataclass
class DraftDiff:
    """Draft paths added, modified (other digest or exec bit) and removed against the base."""

    added: list[str]
    modified: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.removed)


class _Resolved:
    def __init__(self, kind: str, path: str = "", reason: str = "") -> None:
        self.kind, self.path, self.reason = kind, path, reason


def build_contents(view: DraftView) -> Contents:
    """The draft's full contents (see the module docstring). Staged files are hashed, with
    `local_path` set so the registry can upload them; stored entries keep digest/size/ref."""
    manifest = Manifest()
    by_inode: dict[tuple[int, int], ManifestEntry] = {}
    links: list[str] = []
    special: list[SkippedLink] = []
    staged: set[str] = set()
    staging = view.staging
    for e in staging.entries():
        staged.add(e.rel)
        if e.is_symlink:
            links.append(e.rel)
            continue
        if not e.is_regular:
            kind = special_kind(e.st.st_mode)
            if kind is not None:  # lives in the draft, has no place in a version: listed
                special.append(SkippedLink(e.rel, "", "special file", kind))
            continue
        exe = bool(e.st.st_mode & stat.S_IXUSR)
        if e.stored is not None:
            s = e.stored
            manifest.add(
                ManifestEntry(
                    e.rel, s.digest, s.size, s.ref, with_exec(s.extra, exe), s.birth_artifact_id
                )
            )
            continue
        key = (e.st.st_dev, e.st.st_ino)
        known = by_inode.get(key)
        if known is None:
            fd = staging.open_read(e.rel)
            try:
                digest, size = md5_b64_of_fd(fd)
            finally:
                os.close(fd)
            known = ManifestEntry(e.rel, digest, size, local_path=staging.host_path(e.rel))
            by_inode[key] = known
        manifest.add(
            ManifestEntry(
                e.rel,
                known.digest,
                known.size,
                extra=with_exec({}, exe),
                local_path=known.local_path,
            )
        )
    for entry in view.overlay.visible():
        if entry.path not in staged:
            manifest.add(replace(entry, extra=dict(entry.extra), local_path=None))
    out = Contents(manifest, special)
    if links:
        _add_links(view, manifest, sorted(links), out.skipped)
    return out


def _add_links(
    view: DraftView, manifest: Manifest, links: list[str], skipped: list[SkippedLink]
) -> None:
    files = dict(manifest.entries)  # what links can point at: the draft's own files
    budget = [MAX_LINKED_ENTRIES]

    def add(logical: str, target: str) -> None:
        src = files[target]
        manifest.add(replace(src, path=logical, extra=dict(src.extra)))
        budget[0] -= 1

    def expand(real_dir: str, logical_dir: str, stack: tuple[str, ...]) -> str | None:
        for name in sorted(view.listdir(real_dir)):
            real = f"{real_dir}/{name}" if real_dir else name
            logical = f"{logical_dir}/{name}"
            if budget[0] <= 0:
                return "too many entries"
            node = view.lookup(real)
            if node is None:
                continue
            if node.kind == "dir":
                why = expand(real, logical, (*stack, real))
            elif node.kind == "file":
                if real in files:
                    add(logical, real)
                why = None
            else:
                why = follow(real, logical, stack)
            if why is not None:
                return why
        return None

    def follow(link: str, logical: str, stack: tuple[str, ...]) -> str | None:
        """Add what `link` resolves to at `logical`; a reason for skipping the *outer* link
        only when the expansion must stop (too big); inner bad links are listed themselves."""
        r = resolve(view, link)
        if r.kind == "file":
            if r.path in files:
                add(logical, r.path)
            return None
        if r.kind == "dir":
            if r.path in stack:
                skipped.append(SkippedLink(logical, _target(view, link), "loop"))
                return None
            return expand(r.path, logical, (*stack, r.path))
        skipped.append(SkippedLink(logical, _target(view, link), r.reason))
        return None

    for link in links:
        parents = link.split("/")[:-1]
        stack = ("", *("/".join(parents[: i + 1]) for i in range(len(parents))))
        before = dict(manifest.entries)
        why = follow(link, link, stack)
        if why is not None:
            manifest.entries = before
            skipped.append(SkippedLink(link, _target(view, link), why))


def _target(view: DraftView, link: str) -> str:
    try:
        return view.staging.readlink(link)
    except OSError:
        return "?"


def resolve(view: DraftView, link: str) -> _Resolved:
    """Resolve the draft symlink `link` within the draft, component by component."""
    resolved = link.split("/")[:-1]
    try:
        target = view.staging.readlink(link)
    except OSError:
        return _Resolved("bad", reason="dangling")
    if target.startswith("/"):
        return _Resolved("bad", reason="outside the draft")
    queue = deque(target.split("/"))
    hops = 0
    while queue:
        part = queue.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return _Resolved("bad", reason="outside the draft")
            resolved.pop()
            continue
        cur = "/".join([*resolved, part])
        node = view.lookup(cur)
        if node is None:
            return _Resolved("bad", reason="dangling")
        if node.kind == "symlink":
            hops += 1
            if hops > MAX_HOPS:
                return _Resolved("bad", reason="loop")
            inner = view.staging.readlink(cur)
            if inner.startswith("/"):
                return _Resolved("bad", reason="outside the draft")
            queue.extendleft(reversed(inner.split("/")))
            continue
        if node.kind == "file" and any(p not in ("", ".") for p in queue):
            return _Resolved("bad", reason="dangling")
        resolved.append(part)
    final = "/".join(resolved)
    node = view.lookup(final)
    if node is None:
        return _Resolved("bad", reason="dangling")
    return _Resolved("dir" if node.kind == "dir" else "file", final)


def same_contents(a: Manifest | None, b: Manifest) -> bool:
    """Same files, bytes and exec bits (the digest alone ignores exec bits)."""
    if a is None:
        return len(b) == 0
    if a.digest() != b.digest():
        return False
    return all(is_executable(e) == is_executable(a.entries[p]) for p, e in b.entries.items())


def diff(base: Manifest | None, manifest: Manifest) -> DraftDiff:
    base = base or Manifest()
    added = sorted(p for p in manifest.entries if p not in base.entries)
    modified = sorted(
        p
        for p, e in manifest.entries.items()
        if p in base.entries
        and (
            base.entries[p].digest != e.digest or is_executable(base.entries[p]) != is_executable(e)
        )
    )
    removed = sorted(p for p in base.entries if p not in manifest.entries)
    return DraftDiff(added, modified, removed)
