"""The DraftTree of a writable mount: FUSE calls on `/<entity>/<project>/<name>/...` (DESIGN §3).

Thin by design: every decision about the view lives in staging.py (copy-on-write layers) and
every decision about versions in commit.py; this module maps FUSE vocabulary onto them.

* File handles are real OS fds on staged files whenever a file is staged (writes are one
  `pwrite`, no lock, no Python buffering), and small integers above 2**32 for read-only opens
  of unchanged files, which read through the resolver and the shared cache.
* The mount owns its write dir (commit_requests.WriteDirLock) and answers `artifactfs commit`
  through the request thread; `shutdown()` commits every changed draft on clean unmount.
* Not supported in drafts, by decision (docs/SEMANTICS.md): symlinks and hard links (EPERM: a
  manifest holds files only), special files. Modes and times are kept on staged files while the
  draft lives but are not part of a version.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from artifactfs.drafts.commit import (
    PRODUCER_MOUNT,
    CommitResult,
    _retire,
    commit_draft,
    recover_all,
)
from artifactfs.drafts.commit_requests import RequestServer, WriteDirLock
from artifactfs.drafts.draft import (
    DIR_MODE,
    FILE_MODE,
    Draft,
    draft_dir,
    iter_draft_dirs,
    open_draft,
)
from artifactfs.drafts.errors import DraftError
from artifactfs.drafts.state import DraftOptions
from artifactfs.errors import ArtifactFSError, InvalidNameError
from artifactfs.fusefs.draft_tree import DraftContext, Stat, split_path
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.names import check_alias, check_name

log = logging.getLogger(__name__)

XATTR_PREFIX = "user.artifact."
OPTION_XATTRS = ("type", "description", "metadata", "aliases")
VIRTUAL_FH_BASE = 1 << 32
LOCK_WAIT = 30.0
"""Seconds a starting mount waits for a direct `artifactfs commit` to release the write dir."""


def _oserr(code: int, path: str, why: str = "") -> OSError:
    return OSError(code, why or os.strerror(code), path)


def _ts(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return time.time()


@dataclass
class Handle:
    """An open file of a draft: a real fd on a staged file, or a stored entry read by range."""

    draft: Draft
    fd: int | None
    entry: ManifestEntry | None
    writable: bool


class ProgressLog:
    """Commit progress for the mount log: one line every few seconds, not per block."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now - self.last >= 2.0:
                self.last = now
                pct = 100.0 * self.done / self.total if self.total else 100.0
                log.info("committing %s: %.0f%% (%d bytes)", self.name, pct, self.done)


class Drafts:
    """DraftTree over the staging and commit engines (see drafts_api for the contract)."""

    def __init__(self, ctx: DraftContext) -> None:
        self.ctx = ctx
        self.resolver = ctx.resolver
        self.write_dir = Path(ctx.config.write_dir)
        self.ttl = max(float(ctx.config.metadata_ttl), 0.0)
        self._lock = threading.RLock()
        self._drafts: dict[tuple[str, str, str], tuple[Draft, float]] = {}
        self._handles: dict[int, Handle] = {}
        self._virtual = itertools.count(VIRTUAL_FH_BASE)
        self._stats = {"commits": 0, "commit_failures": 0, "copy_ups": 0}
        self._last_results: list[dict[str, Any]] = []
        self.owner = WriteDirLock(self.write_dir, "mount")
        self.owner.acquire(timeout=LOCK_WAIT)
        recovered = recover_all(self.resolver, self.write_dir)
        for name, outcome in recovered.items():
            log.info("draft %s: interrupted commit %s", name, outcome)
        staged = list(iter_draft_dirs(self.write_dir))
        if staged:
            log.info("write dir %s holds %d draft(s)", self.write_dir, len(staged))
        self.requests = RequestServer(self.write_dir, self._handle_request)
        self.requests.start()

    # -- locating drafts ------------------------------------------------------------------------
    def _split(self, path: str) -> tuple[str, str, str, str]:
        parts = split_path(path)
        if len(parts) < 3:
            raise _oserr(errno.ENOENT, path)
        return parts[0], parts[1], parts[2], "/".join(parts[3:])

    def _collection_exists(self, entity: str, project: str, name: str) -> bool:
        try:
            return name in self.resolver.registry.collections(entity, project)
        except InvalidNameError:
            return False

    def _draft(self, entity: str, project: str, name: str, path: str = "") -> Draft:
        """The draft object for a name, if the name is a draft (a collection or a new draft).
        Unmaterialized drafts follow `latest` (re-resolved after the TTL); materialized ones
        keep their base."""
        key = (entity, project, name)
        now = time.monotonic()
        with self._lock:
            cached = self._drafts.get(key)
            if cached is not None:
                draft, at = cached
                if draft.materialized or now - at < self.ttl:
                    return draft
            root = draft_dir(self.write_dir, entity, project, name)
            if not root.is_dir() and not self._collection_exists(entity, project, name):
                raise _oserr(errno.ENOENT, path or f"/{entity}/{project}/{name}")
            draft = open_draft(self.resolver, self.write_dir, entity, project, name)
            self._drafts[key] = (draft, now)
            return draft

    def _resolve(self, path: str) -> tuple[Draft, str]:
        entity, project, name, rel = self._split(path)
        return self._draft(entity, project, name, path), rel

    # -- attributes -----------------------------------------------------------------------------
    def _stat_dir(self, mtime: float | None = None) -> Stat:
        t = mtime if mtime is not None else self.ctx.mount_time
        return {
            "st_mode": stat.S_IFDIR | DIR_MODE,
            "st_nlink": 2,
            "st_size": 0,
            "st_mtime": t,
            "st_ctime": t,
            "st_atime": t,
            "st_uid": self.ctx.uid,
            "st_gid": self.ctx.gid,
        }

    def _stat_real(self, st: os.stat_result) -> Stat:
        return {
            "st_mode": st.st_mode,
            "st_nlink": st.st_nlink,
            "st_size": st.st_size,
            "st_mtime": st.st_mtime,
            "st_ctime": st.st_ctime,
            "st_atime": st.st_atime,
            "st_uid": self.ctx.uid,
            "st_gid": self.ctx.gid,
            "st_blocks": st.st_blocks,
        }

    def getattr(self, path: str, fh: int | None = None) -> Stat:
        parts = split_path(path)
        if len(parts) < 3:
            if (self.write_dir.joinpath(*parts)).is_dir():
                return self._stat_dir()
            raise _oserr(errno.ENOENT, path)
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None and handle.fd is not None:
            return self._stat_real(os.fstat(handle.fd))
        draft, rel = self._resolve(path)
        node = draft.lookup(rel)
        if node is None:
            raise _oserr(errno.ENOENT, path)
        if node.staged is not None:
            return self._stat_real(node.staged)
        base_time = _ts(draft.base_created_at)
        if node.is_dir:
            return self._stat_dir(base_time)
        assert node.entry is not None
        st = self._stat_dir(base_time)
        st.update(st_mode=stat.S_IFREG | FILE_MODE, st_nlink=1, st_size=node.entry.size or 0)
        return st

    def readdir(self, path: str) -> list[tuple[str, int, int]]:
        """(name, st_mode type bits, 0): the kernel's d_type, so `find`/`os.walk` need no stat."""
        draft, rel = self._resolve(path)
        out = []
        with draft.lock:
            for name in draft.listdir(rel):
                node = draft.lookup(f"{rel}/{name}" if rel else name)
                if node is not None:
                    out.append((name, stat.S_IFDIR if node.is_dir else stat.S_IFREG, 0))
        return out

    def readlink(self, path: str) -> str:
        raise _oserr(errno.EINVAL, path, "drafts hold no symlinks")

    # -- namespace ------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int) -> None:
        parts = split_path(path)
        try:
            for part in parts[:3]:
                check_name(part)
        except InvalidNameError as e:
            raise _oserr(errno.EINVAL, path, str(e)) from None
        if len(parts) < 3:
            target = self.write_dir.joinpath(*parts)
            if target.is_dir():
                raise _oserr(errno.EEXIST, path)
            target.mkdir(parents=True)
            return
        if len(parts) == 3:
            entity, project, name = parts
            with self._lock:
                root = draft_dir(self.write_dir, entity, project, name)
                if root.is_dir() or self._collection_exists(entity, project, name):
                    raise _oserr(errno.EEXIST, path)
                draft = open_draft(self.resolver, self.write_dir, entity, project, name)
                draft.materialize()
                self._drafts[(entity, project, name)] = (draft, time.monotonic())
            return
        draft, rel = self._resolve(path)
        draft.mkdir(rel, mode)

    def rmdir(self, path: str) -> None:
        parts = split_path(path)
        if len(parts) < 3:
            try:
                self.write_dir.joinpath(*parts).rmdir()
            except FileNotFoundError:
                raise _oserr(errno.ENOENT, path) from None
            return
        draft, rel = self._resolve(path)
        if rel:
            draft.rmdir(rel)
            return
        # The draft root: a new, empty draft can be removed; a collection's draft always exists.
        with self._lock, draft.lock:
            if self._collection_exists(draft.entity, draft.project, draft.name):
                raise _oserr(errno.EBUSY, path, "the draft of an existing collection stays")
            if draft.listdir(""):
                raise _oserr(errno.ENOTEMPTY, path)
            if draft.root.exists():
                draft.close()
                _retire(draft.root)
            self._drafts.pop((draft.entity, draft.project, draft.name), None)

    def unlink(self, path: str) -> None:
        draft, rel = self._resolve(path)
        if not rel:
            raise _oserr(errno.EISDIR, path)
        draft.unlink(rel)

    def rename(self, old: str, new: str) -> None:
        a, arel = self._resolve(old)
        b, brel = self._resolve(new)
        if a is not b:
            raise _oserr(errno.EXDEV, new, "rename across drafts")
        if not arel or not brel:
            raise _oserr(errno.EBUSY, old, "a draft directory itself cannot be renamed")
        a.rename(arel, brel)

    def symlink(self, path: str, target: str) -> None:
        raise _oserr(errno.EPERM, path, "drafts hold files and directories only (no symlinks)")

    def chmod(self, path: str, mode: int) -> None:
        draft, rel = self._resolve(path)
        draft.chmod(rel, mode)

    def utimens(self, path: str, times: tuple[int, int] | None) -> None:
        draft, rel = self._resolve(path)
        draft.utimens(rel, None if times is None else _utime_ns(draft, rel, times))

    # -- files ----------------------------------------------------------------------------------
    def _register(self, handle: Handle) -> int:
        fh = handle.fd if handle.fd is not None else next(self._virtual)
        with self._lock:
            self._handles[fh] = handle
        return fh

    def open(self, path: str, flags: int) -> int:
        draft, rel = self._resolve(path)
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC
        if writing:
            staged_before = draft.lookup(rel)
            fd = draft.open_file(rel, flags)
            if staged_before is not None and staged_before.staged is None:
                self._stats["copy_ups"] += 1
            return self._register(Handle(draft, fd, None, True))
        with draft.lock:
            node = draft.node(rel)
            if node.is_dir:
                raise _oserr(errno.EISDIR, path)
            if node.staged is not None:
                return self._register(Handle(draft, draft.open_staged_readonly(rel), None, False))
            return self._register(Handle(draft, None, node.entry, False))

    def create(self, path: str, mode: int, flags: int) -> int:
        draft, rel = self._resolve(path)
        if not rel:
            raise _oserr(errno.EISDIR, path)
        fd = draft.open_file(rel, flags | os.O_CREAT, mode)
        writable = (flags & os.O_ACCMODE) != os.O_RDONLY
        if not writable:
            draft.writer_closed()
        return self._register(Handle(draft, fd, None, writable))

    def _handle(self, fh: int, path: str) -> Handle:
        handle = self._handles.get(fh)
        if handle is None:
            raise _oserr(errno.EBADF, path)
        return handle

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        handle = self._handle(fh, path)
        if handle.fd is not None:
            return os.pread(handle.fd, size, offset)
        assert handle.entry is not None
        length = max(0, min(size, (handle.entry.size or 0) - offset))
        if length == 0:
            return b""
        try:
            return handle.draft.read_stored(handle.entry, offset, length)
        except ArtifactFSError as e:
            log.error("read of %s failed: %s", path, e)
            raise _oserr(errno.EIO, path) from e

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        handle = self._handle(fh, path)
        if handle.fd is None or not handle.writable:
            raise _oserr(errno.EBADF, path)
        return os.pwrite(handle.fd, data, offset)

    def truncate(self, path: str, length: int, fh: int | None) -> None:
        handle = self._handles.get(fh) if fh is not None else None
        if handle is not None and handle.fd is not None and handle.writable:
            os.ftruncate(handle.fd, length)
            return
        draft, rel = self._resolve(path)
        if not rel:
            raise _oserr(errno.EISDIR, path)
        draft.truncate(rel, length)

    def flush(self, path: str, fh: int) -> None:
        return None  # bytes are already in the staged file (the page cache survives a crash)

    def release(self, path: str, fh: int) -> None:
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is None:
            return
        if handle.fd is not None:
            os.close(handle.fd)
        if handle.writable:
            handle.draft.writer_closed()

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        handle = self._handles.get(fh)
        if handle is not None and handle.fd is not None:
            (os.fdatasync if datasync else os.fsync)(handle.fd)
            handle.draft.fsync()

    # -- xattrs: commit options on the draft directory ------------------------------------------
    def _option_xattrs(self, draft: Draft) -> dict[str, bytes]:
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

    def getxattr(self, path: str, name: str) -> bytes:
        draft, rel = self._resolve(path)
        draft.node(rel)
        values = self._option_xattrs(draft) if not rel else {}
        if name.startswith(XATTR_PREFIX) and name[len(XATTR_PREFIX) :] in values:
            return values[name[len(XATTR_PREFIX) :]]
        raise _oserr(errno.ENODATA, path)

    def listxattr(self, path: str) -> list[str]:
        draft, rel = self._resolve(path)
        draft.node(rel)
        return [XATTR_PREFIX + k for k in self._option_xattrs(draft)] if not rel else []

    def setxattr(self, path: str, name: str, value: bytes, options: int) -> None:
        draft, rel = self._resolve(path)
        key = name[len(XATTR_PREFIX) :] if name.startswith(XATTR_PREFIX) else None
        if rel or key not in OPTION_XATTRS:
            raise _oserr(
                errno.ENOTSUP,
                path,
                f"settable: {XATTR_PREFIX}{{{','.join(OPTION_XATTRS)}}} on the draft directory",
            )
        opts = DraftOptions(**vars(draft.options))
        try:
            setattr(opts, key, _parse_option(key, value.decode()))
        except (ValueError, ArtifactFSError) as e:
            raise _oserr(errno.EINVAL, path, f"{name}: {e}") from None
        draft.set_options(opts)

    def removexattr(self, path: str, name: str) -> None:
        draft, rel = self._resolve(path)
        key = name[len(XATTR_PREFIX) :] if name.startswith(XATTR_PREFIX) else None
        if rel or key not in OPTION_XATTRS:
            raise _oserr(errno.ENODATA, path)
        opts = DraftOptions(**vars(draft.options))
        setattr(opts, key, [] if key == "aliases" else None)
        draft.set_options(opts)

    # -- listings merged into the read side ------------------------------------------------------
    def draft_names(self, entity: str, project: str) -> list[str]:
        names: dict[str, None] = {}
        try:
            names.update(dict.fromkeys(self.resolver.registry.collections(entity, project)))
        except (ArtifactFSError, OSError) as e:
            log.debug("no collections for %s/%s: %s", entity, project, e)
        with contextlib.suppress(OSError):
            names.update(
                dict.fromkeys(
                    p.name for p in (self.write_dir / entity / project).iterdir() if p.is_dir()
                )
            )
        return list(names)

    def extra_entities(self) -> list[str]:
        with contextlib.suppress(OSError):
            return [
                p.name
                for p in self.write_dir.iterdir()
                if p.is_dir() and not p.name.startswith(".")
            ]
        return []

    def extra_projects(self, entity: str) -> list[str]:
        with contextlib.suppress(OSError):
            return [p.name for p in (self.write_dir / entity).iterdir() if p.is_dir()]
        return []

    # -- commits ---------------------------------------------------------------------------------
    def _all_drafts(self) -> list[Draft]:
        """Every materialized draft: those in memory and those on disk only."""
        out = []
        with self._lock:
            for entity, project, name, _root in iter_draft_dirs(self.write_dir):
                cached = self._drafts.get((entity, project, name))
                if cached is None or not cached[0].materialized:
                    draft = open_draft(self.resolver, self.write_dir, entity, project, name)
                    self._drafts[(entity, project, name)] = (draft, time.monotonic())
                else:
                    draft = cached[0]
                out.append(draft)
        return out

    def commit(
        self,
        draft: Draft,
        options: DraftOptions | None = None,
        dry_run: bool = False,
        producer: str = PRODUCER_MOUNT,
    ) -> CommitResult:
        """Commit one draft; failures come back as a 'failed' result (the draft stays)."""
        progress = ProgressLog(draft.qualified_name, 0)
        touched: list[str] = []
        try:
            with draft.lock:
                if self.ctx.invalidate is not None and not dry_run:
                    touched = _draft_paths(draft)
                progress.total = sum(p.stat().st_size for _, p in draft.staged_files())
                result = commit_draft(
                    draft, options=options, dry_run=dry_run, producer=producer, progress=progress
                )
        except (DraftError, ArtifactFSError, OSError) as e:
            self._stats["commit_failures"] += 1
            log.error("commit of draft %s failed, draft kept: %s", draft.qualified_name, e)
            return CommitResult(draft.qualified_name, "failed", error=str(e))
        if result.status == "committed":
            self._stats["commits"] += 1
            with self._lock:
                self._drafts.pop((draft.entity, draft.project, draft.name), None)
            if touched and self.ctx.invalidate is not None:
                self.ctx.invalidate(touched)
        log.info("%s", result.describe())
        self._last_results = [result.to_json(), *self._last_results][:20]
        return result

    def _handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") != "commit":
            return {"error": f"unknown request {request.get('op')!r}"}
        wanted = request.get("drafts")
        opts = request.get("options")
        options = DraftOptions(**opts) if opts else None
        results = []
        for draft in self._all_drafts():
            if wanted is not None and draft.qualified_name not in wanted:
                continue
            results.append(
                self.commit(
                    draft,
                    options,
                    bool(request.get("dry_run")),
                    request.get("producer", PRODUCER_MOUNT),
                ).to_json()
            )
        missing = sorted(set(wanted or ()) - {r["draft"] for r in results})
        return {"results": results, "missing": missing}

    # -- lifecycle -------------------------------------------------------------------------------
    def _dirty(self, draft: Draft) -> bool:
        """Cheap change test for stats (no hashing): anything deleted, moved or staged."""
        if not draft.materialized:
            return False
        if draft.overlay.changed():
            return True
        return next(iter(draft.staged_files()), None) is not None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            drafts = [d for d, _ in self._drafts.values() if d.materialized]
            on_disk = {f"{e}/{p}/{n}" for e, p, n, _ in iter_draft_dirs(self.write_dir)}
            writers = sum(d.open_writers for d in drafts)
        pending = sorted(d.qualified_name for d in drafts if self._dirty(d))
        pending += sorted(on_disk - {d.qualified_name for d in drafts})
        return {
            "enabled": True,
            "write_dir": str(self.write_dir),
            "drafts": len(on_disk),
            "pending_commits": len(pending),
            "pending": pending,
            "open_for_writing": writers,
            **self._stats,
            "last_results": self._last_results,
        }

    def shutdown(self) -> None:
        """Clean unmount: commit every changed draft (progress in the log); failures keep
        their drafts for the next mount or `artifactfs commit`."""
        self.requests.stop()
        try:
            drafts = self._all_drafts()
            if drafts:
                log.info("unmount: committing %d draft(s)", len(drafts))
            for draft in drafts:
                self.commit(draft)
                draft.close()
        finally:
            self.owner.release()


def _draft_paths(draft: Draft) -> list[str]:
    """Every mount path of a draft the kernel may have cached: its files (base, moved, deleted,
    staged), their directories, and the draft itself; children before parents."""
    rels: set[str] = set(draft.overlay.whiteouts) | set(draft.overlay.moves)
    if draft.overlay.base is not None:
        rels.update(draft.overlay.base.entries)
    rels.update(rel for rel, _ in draft.staged_files())
    rels.update(draft.staged_dirs())
    for rel in list(rels):
        parts = rel.split("/")
        rels.update("/".join(parts[:i]) for i in range(1, len(parts)))
    root = f"/{draft.entity}/{draft.project}/{draft.name}"
    return [f"{root}/{r}" for r in sorted(rels, key=len, reverse=True) if r] + [root]


UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def _utime_ns(draft: Draft, rel: str, times: tuple[int, int]) -> tuple[int, int]:
    """mfusepy folds a timespec into nanoseconds, so `touch` (UTIME_NOW) and UTIME_OMIT arrive
    as tiny magic values: turn them into real times instead of 1970."""
    out = []
    current = draft.lookup(rel)
    for i, t in enumerate(times):
        if t == UTIME_NOW:
            t = time.time_ns()
        elif t == UTIME_OMIT:
            st = current.staged if current is not None else None
            t = (st.st_atime_ns, st.st_mtime_ns)[i] if st is not None else time.time_ns()
        out.append(t)
    return out[0], out[1]


def _parse_option(key: str, text: str) -> Any:
    """xattr text -> option value (aliases: JSON list or comma-separated)."""
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
