"""Draft -> new version, through the same registry path as `log_artifact`, crash-safe.

Order of a commit, and why each step is where it is:

1. Build the manifest under the draft's lock (no writer can change a staged file while it is
   hashed and uploaded). Unchanged stored entries keep digest/size/ref; staged files are hashed;
   symlinks resolve inside the draft, and those that cannot are listed (contents.py). Same
   files, bytes and exec bits as the base: nothing to commit. An exec-bit change alone keeps
   the artifact digest (W&B's digest has no modes) and still makes a new version.
2. Write `committing.json` (atomic) naming the manifest digest and the `latest` version seen at
   the start. From here on, a crash is resolved by asking the registry (step 5).
3. `Registry.commit`: uploads only blobs the store lacks, writes the manifest, allocates `vN`
   with a create-only write (the commit point), moves `latest`. A run record with
   job_type `artifactfs-mount` (or `artifactfs-commit` from the CLI) is the producer, and the
   user of the base version (so the lineage shows the base). As W&B's `new_draft()`, the new
   version keeps the base's type, description and metadata unless the options say otherwise.
4. Remove the draft directory with one rename into `WRITE_DIR/.trash` (atomic), then delete it.
   The draft of the name is now a fresh view of the new `latest`, i.e. the same files.
5. Recovery (recovery.py), on the next start of anything that opens the write dir: a draft
   that still has a `committing.json` is done if a version of its collection at or after the
   recorded `latest` has the recorded digest and manifest (the manifest tells an exec-bit-only
   commit from the version it changes), and still pending otherwise.

If `latest` moved while the draft was open, the commit still makes a new version of the draft's
full contents (never a merge); the version records `base_version` and the result says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from artifactfs.drafts.contents import DraftDiff, same_contents
from artifactfs.drafts.draft import Draft
from artifactfs.drafts.errors import CommitError, DraftBusyError
from artifactfs.drafts.layout import JOURNAL, retire, write_dir_of
from artifactfs.drafts.recovery import recover
from artifactfs.drafts.state import DraftOptions, atomic_write
from artifactfs.drafts.view import latest_record
from artifactfs.errors import ArtifactFSError, ArtifactNotFoundError
from artifactfs.resolver import keys
from artifactfs.resolver.backends.base import Progress
from artifactfs.resolver.records import RunRecord, VersionRecord

log = logging.getLogger(__name__)

DEFAULT_TYPE = "dataset"
PRODUCER_MOUNT = "artifactfs-mount"
PRODUCER_CLI = "artifactfs-commit"


@dataclass
class CommitResult:
    """What happened to one draft. `status`: committed | unchanged | dry-run | failed."""

    draft: str
    status: str
    version: str | None = None
    base_version: int | None = None
    latest_at_start: int | None = None
    files: int = 0
    size: int = 0
    diff: DraftDiff | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Symlinks not committed (dangling, outside the draft, loops) and special files (FIFOs,
    sockets, device nodes), one line each."""

    @property
    def latest_moved(self) -> bool:
        return self.base_version is not None and self.latest_at_start not in (
            None,
            self.base_version,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "diff"}
        if self.diff is not None:
            out["diff"] = {
                "added": self.diff.added,
                "modified": self.diff.modified,
                "removed": self.diff.removed,
            }
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommitResult:
        diff = data.pop("diff", None)
        result = cls(**data)
        if diff is not None:
            result.diff = DraftDiff(diff["added"], diff["modified"], diff["removed"])
        return result

    def describe(self) -> str:
        text = self._describe()
        if self.skipped:
            text += f"; {len(self.skipped)} entr{'y' if len(self.skipped) == 1 else 'ies'} not committed:"
            text += "".join(f"\n  {line}" for line in self.skipped)
        return text

    def _describe(self) -> str:
        if self.status == "committed":
            text = f"{self.draft}: committed {self.version} ({self.files} files, {self.size} bytes)"
            if self.base_version is not None:
                text += f" from a draft of v{self.base_version}"
            if self.latest_moved:
                text += (
                    f"; note: latest had moved to v{self.latest_at_start} while the draft was "
                    "open, the new version holds the draft's full contents (no merge)"
                )
            return text
        if self.status == "unchanged":
            return f"{self.draft}: no changes, nothing committed"
        if self.status == "dry-run":
            d = self.diff if self.diff is not None else DraftDiff([], [], [])
            counts = f"{len(d.added)} added, {len(d.modified)} modified, {len(d.removed)} removed"
            return f"{self.draft}: would commit {self.files} files ({counts})"
        return f"{self.draft}: commit failed, draft kept: {self.error}"


def merged_options(draft: Draft, override: DraftOptions | None) -> DraftOptions:
    """Command-line options win over the draft's xattrs, field by field."""
    opts = replace(draft.options)
    if override is not None:
        for name in ("type", "description", "metadata"):
            value = getattr(override, name)
            if value is not None:
                setattr(opts, name, value)
        opts.aliases = list(dict.fromkeys([*opts.aliases, *override.aliases]))
    return opts


def _collection_type(draft: Draft) -> str | None:
    try:
        return draft.resolver.registry.collection(draft.entity, draft.project, draft.name).type
    except ArtifactNotFoundError:
        return None


def _base_record(draft: Draft, base: int | None) -> VersionRecord | None:
    if base is None:
        return None
    try:
        return draft.resolver.registry.version(draft.entity, draft.project, draft.name, base)
    except ArtifactNotFoundError:
        return None  # deleted since the draft was made


def inherited_options(opts: DraftOptions, base: VersionRecord | None) -> DraftOptions:
    """As W&B's `new_draft()`: what the options leave unset comes from the base version
    (type, description, metadata; not aliases)."""
    if base is None:
        return opts
    return replace(
        opts,
        type=opts.type or base.type,
        description=opts.description if opts.description is not None else base.description,
        metadata=opts.metadata if opts.metadata is not None else dict(base.metadata),
    )


def commit_draft(
    draft: Draft,
    *,
    options: DraftOptions | None = None,
    dry_run: bool = False,
    producer: str = PRODUCER_MOUNT,
    progress: Progress | None = None,
    writers: int = 0,
) -> CommitResult:
    """Commit one draft (see the module docstring). Raises CommitError (draft kept) on failure,
    DraftBusyError while files of the draft are open for writing (its own `open_writers`, plus
    `writers` that a front end counted elsewhere)."""
    with draft.lock:
        busy = draft.open_writers + writers
        if busy:
            raise DraftBusyError(
                f"{draft.qualified_name}: {busy} file(s) open for writing; "
                "close them and commit again"
            )
        base = draft.state.base_version
        if not draft.materialized:
            return CommitResult(draft.qualified_name, "unchanged", base_version=base)
        draft.fsync()
        contents = draft.contents()
        manifest = contents.manifest
        result = CommitResult(
            draft.qualified_name, "unchanged", base_version=base, files=len(manifest)
        )
        result.size = manifest.size
        result.skipped = [s.describe() for s in contents.skipped]
        for line in result.skipped:
            log.warning("draft %s: %s", draft.qualified_name, line)
        if not draft.has_changes(manifest):
            return result
        base_record = _base_record(draft, base)
        opts = inherited_options(merged_options(draft, options), base_record)
        type_ = opts.type or _collection_type(draft) or DEFAULT_TYPE
        registry = draft.resolver.registry
        registry.invalidate()
        latest = latest_record(draft.resolver, draft.entity, draft.project, draft.name)
        result.latest_at_start = latest.version if latest else None
        if dry_run:
            result.status = "dry-run"
            result.diff = draft.diff(manifest)
            return result
        digest = manifest.digest()
        dedup = (
            latest is None
            or latest.digest != digest
            or same_contents(registry.manifest(latest), manifest)
        )
        journal = {
            "digest": digest,
            "manifest_key": keys.manifest_key(hashlib.md5(manifest.to_bytes()).hexdigest()),
            "latest_at_start": result.latest_at_start,
            "base_version": base,
            "pid": os.getpid(),
        }
        try:
            atomic_write(draft.root / JOURNAL, json.dumps(journal).encode())
        except OSError as e:
            raise CommitError(f"{draft.qualified_name}: cannot start the commit: {e}") from e
        run = RunRecord(
            id=uuid.uuid4().hex[:16],
            entity=draft.entity,
            project=draft.project,
            name=producer,
            job_type=producer,
            config={
                "draft": draft.qualified_name,
                "base_version": base,
                "host": socket.gethostname(),
                "write_dir": str(write_dir_of(draft.root)),
            },
            # the lineage shows the base: this run read it to make the new version
            used=[base_record.full_name] if base_record is not None else [],
        )
        log.info(
            "committing draft %s (%d files, %d bytes, base %s)",
            draft.qualified_name,
            len(manifest),
            manifest.size,
            "none" if base is None else f"v{base}",
        )
        try:
            registry.save_run(run)
            if base_record is not None:
                registry.record_use(base_record, run)
            record = registry.commit(
                draft.entity,
                draft.project,
                draft.name,
                type_,
                manifest,
                description=opts.description,
                metadata=opts.metadata,
                aliases=opts.aliases,
                run_id=run.id,
                base_version=base,
                progress=progress,
                dedup_latest=dedup,
            )
            run.logged.append(record.full_name)
            registry.save_run(run)
        except (ArtifactFSError, OSError, ValueError) as e:
            if recover(draft.resolver, draft.root) == "done":
                log.warning("%s: commit reported %s, but the version exists", draft, e)
                result.status = "committed"
                result.notes.append(f"the registry reported {e} after the version was created")
                return result
            raise CommitError(
                f"{draft.qualified_name}: commit failed, the draft is kept: {e}"
            ) from e
        retire(draft.root)
        draft.close()
        result.status = "committed"
        result.version = record.full_name
        log.info("committed draft %s as %s", draft.qualified_name, record.full_name)
        return result
