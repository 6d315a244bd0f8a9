"""The drafts of one write dir, as one object: the interface the mount and the CLI both use.

`DraftWorkspace(resolver, write_dir)` finds and opens drafts (a name's draft follows `latest`
until its first change), creates and discards new ones, lists what the namespace gains from
them, commits them with the bookkeeping a long-lived owner needs (counters, recent results,
progress in the log, the hook that tells the kernel which paths changed), answers `artifactfs
commit` for a running mount, and reports status and diffs. Ownership of the write dir (one
owner at a time, commit_requests.py) and crash recovery (recovery.py) happen in `own()`.

Every draft is opened with the resolver of the registry it belongs to (binding.py), whatever the
configuration says now; a mount (`serve_registry_only`) serves only drafts of its own registry
and leaves the others, on disk, to `artifactfs commit` (which commits each into its registry).

What it hands out is a `Draft` (draft.py): the per-draft file operations are the Draft's own.
Apart from those modules because callers should need this one: the FUSE callbacks
(fusefs/draft_ops.py) translate paths, file handles and errno onto it, the CLI
(cli/draft_cmds.py) adds terminal output; neither knows how drafts sit on disk.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactfs.drafts import options as draft_options
from artifactfs.drafts.binding import Binding, Resolvers, read_binding
from artifactfs.drafts.commit import PRODUCER_CLI, PRODUCER_MOUNT, CommitResult, commit_draft
from artifactfs.drafts.commit_requests import (
    CommitRequest,
    Report,
    RequestServer,
    WriteDirLock,
    commit_request,
    lock_holder,
    parse_commit_request,
)
from artifactfs.drafts.contents import DraftDiff
from artifactfs.drafts.draft import (
    DIR_MODE,
    FILE_MODE,
    Draft,
    find_draft,
    open_draft,
    parse_spec,
)
from artifactfs.drafts.errors import (
    DraftBusyError,
    DraftError,
    DraftForeignError,
    DraftNotFoundError,
)
from artifactfs.drafts.layout import JOURNAL, draft_dir, is_materialized, iter_draft_dirs, retire
from artifactfs.drafts.ledger import CommitLedger, ProgressLog, ReportedProgress
from artifactfs.drafts.namespace import DraftNamespace
from artifactfs.drafts.options import OPTION_KEYS
from artifactfs.drafts.recovery import recover_all
from artifactfs.drafts.state import DraftOptions
from artifactfs.drafts.unmount import TERMINAL, commit_all, write_report
from artifactfs.drafts.view import err
from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.backends.base import Progress
from artifactfs.resolver.resolver import Resolver

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "OPTION_KEYS",
    "PRODUCER_CLI",
    "PRODUCER_MOUNT",
    "CommitResult",
    "Draft",
    "DraftOptions",
    "DraftStatus",
    "DraftWorkspace",
]

log = logging.getLogger(__name__)

Key = tuple[str, str, str]


@dataclass
class DraftStatus:
    """One draft against its base, for `artifactfs status` and `artifactfs diff`."""

    draft: str
    base_version: int | None
    diff: DraftDiff
    interrupted: bool
    """A commit was interrupted; resolved by the next `own()` (commit or mount)."""
    registry: str | None = None
    """The draft's registry when it is not the configured one."""


class DraftWorkspace(DraftNamespace):
    """The drafts of `write_dir` (see the module docstring; namespace.py adds entities and
    projects)."""

    def __init__(
        self,
        resolver: Resolver,
        write_dir: str | Path,
        *,
        follow_ttl: float = 0.0,
        log_results: bool = False,
        serve_registry_only: bool = False,
    ) -> None:
        self.resolver = resolver
        self.resolvers = Resolvers(resolver)
        self.serve_registry_only = serve_registry_only
        """A mount: drafts of other registries are not served (DraftForeignError, EBUSY) and
        not committed at unmount; they stay on disk for `artifactfs commit`."""
        self.write_dir = Path(write_dir)
        self.follow_ttl = max(float(follow_ttl), 0.0)
        """Seconds an unchanged draft keeps its base before `latest` is looked up again."""
        self.log_results = log_results
        """Log every commit's outcome (a mount: the log is the only place anyone sees it)."""
        self.invalidate: Callable[[list[str]], None] | None = None
        """Told the `entity/project/name[/path]` paths a commit changed (the kernel's cache)."""
        self.count_writers: Callable[[Draft], int] | None = None
        """Files of a draft open for writing that were opened without `Draft.open_file` being
        told (a mount whose kernel opens files without asking counts them in /proc); a
        commit refuses while there are any, as it does for the engine's own open writers."""
        self.ledger = CommitLedger()
        self._lock = threading.RLock()
        self._drafts: dict[Key, tuple[Draft, float]] = {}
        self._foreign: dict[Key, Binding] = {}
        self._owner: WriteDirLock | None = None
        self._requests: RequestServer | None = None

    # -- owning the write dir -------------------------------------------------------------------
    def own(self, kind: str, timeout: float = 0.0, **info: Any) -> None:
        """Become the write dir's one owner (`kind`: mount | cli; `info` for others to read,
        e.g. a mount's mountpoint), waiting up to `timeout` seconds (DraftBusyError names the
        holder), then finish interrupted commits."""
        lock = WriteDirLock(self.write_dir, kind, **info)
        lock.acquire(timeout=timeout)
        self._owner = lock
        for name, outcome in recover_all(self.resolvers.for_draft, self.write_dir).items():
            log.info("draft %s: interrupted commit %s", name, outcome)
        staged = list(iter_draft_dirs(self.write_dir))
        if staged:
            log.info("write dir %s holds %d draft(s)", self.write_dir, len(staged))

    def serve_requests(self) -> None:
        """Answer `artifactfs commit` from other processes (a mount, while it owns the dir)."""
        self._requests = RequestServer(self.write_dir, self._answer)
        self._requests.start()

    def release(self) -> None:
        """Stop answering requests and give up ownership (no commits)."""
        if self._requests is not None:
            self._requests.stop()
            self._requests = None
        if self._owner is not None:
            self._owner.release()
            self._owner = None
        self.resolvers.close()

    def shutdown(self) -> None:
        """Commit every changed draft, then release the write dir; failures keep their drafts
        for the next owner. The write dir stays owned (and marked "unmounting") until the last
        commit is done, and the results are left for `artifactfs unmount`/`wait` (unmount.py);
        a foreground mount's terminal shows what is committed, and why it takes long."""
        if self._owner is not None:
            self._owner.note(unmounting=True)
        if self._requests is not None:
            if self._requests.busy():
                log.info(
                    "unmount: waiting for a commit `artifactfs commit` asked for", extra=TERMINAL
                )
            self._requests.stop()
            self._requests = None
        results: list[CommitResult] = []
        try:
            commit_all(self, results)
        finally:
            try:
                write_report(self.write_dir, results)
            except OSError as e:
                log.warning("unmount: cannot record the commits in %s: %s", self.write_dir, e)
            self.release()

    @staticmethod
    def owner(write_dir: str | Path) -> dict[str, Any] | None:
        """Who owns `write_dir` now ({"pid", "kind"}), or None (no resolver needed)."""
        return lock_holder(Path(write_dir))

    # -- finding drafts -------------------------------------------------------------------------
    def _open(self, entity: str, project: str, name: str) -> Draft:
        """A draft, with the resolver of the registry it belongs to."""
        resolver = self.resolvers.for_draft(draft_dir(self.write_dir, entity, project, name))
        draft = open_draft(resolver, self.write_dir, entity, project, name)
        draft.on_copy_up = self.ledger.copied_up
        return draft

    def is_home(self, draft: Draft) -> bool:
        """Does `draft` belong to this workspace's registry (or to none yet)?"""
        return self.resolvers.is_home(draft.binding)

    def _check_served(self, key: Key, root: Path) -> None:
        """DraftForeignError when a mount must not serve the draft dir `root`."""
        if not self.serve_registry_only:
            return
        binding = self._foreign.get(key)
        if binding is None and is_materialized(root):
            found = read_binding(root)
            if not self.resolvers.is_home(found):
                assert found is not None
                binding = self._foreign[key] = found
        if binding is not None:
            raise DraftForeignError(
                f"draft {'/'.join(key)} in {self.write_dir} belongs to registry "
                f"{binding.describe()}; commit it with `artifactfs commit {'/'.join(key)}`"
            )

    def draft(self, entity: str, project: str, name: str) -> Draft:
        """The draft of a name, if the name has one (a collection, or a draft on disk);
        DraftNotFoundError otherwise. Unmaterialized drafts follow `latest` (looked up again
        after `follow_ttl`); materialized ones keep their base."""
        key = (entity, project, name)
        now = time.monotonic()
        with self._lock:
            cached = self._drafts.get(key)
            if cached is not None:
                draft, at = cached
                if draft.materialized or now - at < self.follow_ttl:
                    return draft
            root = draft_dir(self.write_dir, entity, project, name)
            if not root.is_dir() and not self.is_collection(entity, project, name):
                raise DraftNotFoundError(f"no draft {entity}/{project}/{name}")
            self._check_served(key, root)
            draft = self._open(entity, project, name)
            self._drafts[key] = (draft, now)
            return draft

    def create(self, entity: str, project: str, name: str) -> Draft:
        """A new, empty draft of a name that has none (EEXIST otherwise); it persists."""
        self.check_names(entity, project, name)
        with self._lock:
            root = draft_dir(self.write_dir, entity, project, name)
            if root.is_dir() or self.is_collection(entity, project, name):
                raise err(errno.EEXIST, f"{entity}/{project}/{name}")
            self._foreign.pop((entity, project, name), None)
            draft = self._open(entity, project, name)
            draft.materialize()
            self._drafts[(entity, project, name)] = (draft, time.monotonic())
            return draft

    def discard(self, draft: Draft) -> None:
        """Remove a new, empty draft; the draft of an existing collection always exists."""
        with self._lock, draft.lock:
            if self.is_collection(draft.entity, draft.project, draft.name):
                raise DraftBusyError(f"{draft.qualified_name}: the draft of a collection stays")
            if draft.listdir(""):
                raise err(errno.ENOTEMPTY, draft.qualified_name)
            if draft.root.exists():
                draft.close()
                retire(draft.root)
            self._drafts.pop((draft.entity, draft.project, draft.name), None)

    def find(self, spec: str, *, readonly: bool = False) -> Draft:
        """`entity/project/name` -> its materialized draft (DraftNotFoundError otherwise), with
        the resolver of its own registry."""
        root = draft_dir(self.write_dir, *parse_spec(spec))
        return find_draft(self.resolvers.for_draft(root), self.write_dir, spec, readonly=readonly)

    def drafts(self) -> list[Draft]:
        """Every materialized draft: those in memory and those on disk only."""
        out = []
        with self._lock:
            for entity, project, name, _root in iter_draft_dirs(self.write_dir):
                cached = self._drafts.get((entity, project, name))
                if cached is None or not cached[0].materialized:
                    draft = self._open(entity, project, name)
                    self._drafts[(entity, project, name)] = (draft, time.monotonic())
                else:
                    draft = cached[0]
                out.append(draft)
        return out

    # -- commit options as attribute text (options.py) ------------------------------------------
    option_keys = OPTION_KEYS

    def option_values(self, draft: Draft) -> dict[str, bytes]:
        return draft_options.option_values(draft)

    def set_option(self, draft: Draft, key: str, value: bytes, label: str | None = None) -> None:
        draft_options.set_option(draft, key, value, label)

    def clear_option(self, draft: Draft, key: str) -> None:
        draft_options.clear_option(draft, key)

    # -- commits --------------------------------------------------------------------------------
    def commit(
        self,
        draft: Draft,
        options: DraftOptions | None = None,
        *,
        dry_run: bool = False,
        producer: str = PRODUCER_MOUNT,
        progress: Progress | None = None,
    ) -> CommitResult:
        """Commit one draft; a failure comes back as a 'failed' result (the draft stays).
        Without `progress`, progress goes to the log every few seconds."""
        touched: list[str] = []
        try:
            with draft.lock:
                if self.invalidate is not None and not dry_run:
                    root = draft.qualified_name
                    touched = [f"{root}/{r}" if r else root for r in draft.visible_paths()]
                if progress is None:
                    progress = ProgressLog(draft.qualified_name, draft.staged_size())
                progress_terminal = getattr(progress, "terminal", False)
                writers = self.count_writers(draft) if self.count_writers is not None else 0
                result = commit_draft(
                    draft,
                    options=options,
                    dry_run=dry_run,
                    producer=producer,
                    progress=progress,
                    writers=writers,
                )
        except (DraftError, ArtifactFSError, OSError) as e:
            self.ledger.failed()
            if self.log_results:
                log.error("commit of draft %s failed, draft kept: %s", draft.qualified_name, e)
            return CommitResult(draft.qualified_name, "failed", error=str(e))
        if result.status == "committed":
            with self._lock:
                self._drafts.pop((draft.entity, draft.project, draft.name), None)
            if touched and self.invalidate is not None:
                self.invalidate(touched)
        if self.log_results:
            log.info("%s", result.describe(), extra=TERMINAL if progress_terminal else None)
        self.ledger.record(result)
        return result

    def _answer(self, request: dict[str, Any], report: Report) -> dict[str, Any]:
        """The owner's side of `ask_owner_to_commit` (runs on the request thread)."""
        try:
            req = parse_commit_request(request)
        except ValueError as e:
            return {"error": str(e)}
        results = [
            self.commit(
                draft,
                req.options,
                dry_run=req.dry_run,
                producer=req.producer,
                progress=ReportedProgress(draft.qualified_name, draft.staged_size(), report),
            ).to_json()
            for draft in self.drafts()
            if req.drafts is None or draft.qualified_name in req.drafts
        ]
        missing = sorted(set(req.drafts or ()) - {r["draft"] for r in results})
        return {"results": results, "missing": missing}

    @staticmethod
    def ask_owner_to_commit(
        write_dir: str | Path,
        names: list[str] | None,
        options: DraftOptions | None,
        *,
        dry_run: bool = False,
        producer: str = PRODUCER_CLI,
        on_progress: Report | None = None,
    ) -> list[CommitResult]:
        """Have the mount that owns `write_dir` commit `names` (None: all); its results.
        DraftNotFoundError for a name it has no draft of; DraftError if it refuses.
        `on_progress({"draft", "done", "total"})` as the mount uploads."""
        request = CommitRequest(names, options, dry_run, producer)
        return commit_request(Path(write_dir), request, on_progress)

    # -- status ---------------------------------------------------------------------------------
    def status_of(self, spec: str) -> DraftStatus:
        """One materialized draft against its base (read only)."""
        draft = self.find(spec, readonly=True)
        try:
            binding = draft.binding
            return DraftStatus(
                draft.qualified_name,
                draft.state.base_version,
                draft.diff(),
                (draft.root / JOURNAL).exists(),
                None if self.resolvers.is_home(binding) or binding is None else binding.describe(),
            )
        finally:
            draft.close()

    def status(self) -> list[DraftStatus]:
        """Every materialized draft against its base (read only)."""
        return [self.status_of(f"{e}/{p}/{n}") for e, p, n, _ in iter_draft_dirs(self.write_dir)]

    def stats(self) -> dict[str, Any]:
        """Counters for `stats.json`: drafts on disk, pending commits, writers, commits."""
        with self._lock:
            drafts = [d for d, _ in self._drafts.values() if d.materialized]
            on_disk = {f"{e}/{p}/{n}" for e, p, n, _ in iter_draft_dirs(self.write_dir)}
            writers = sum(d.open_writers for d in drafts)
        pending = sorted(d.qualified_name for d in drafts if d.dirty())
        pending += sorted(on_disk - {d.qualified_name for d in drafts})
        return {
            "write_dir": str(self.write_dir),
            "drafts": len(on_disk),
            "pending_commits": len(pending),
            "pending": pending,
            "open_for_writing": writers,
            **self.ledger.as_dict(),
        }
