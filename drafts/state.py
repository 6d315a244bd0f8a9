"""The crash-safe record of a draft: a compacted state file plus an append-only journal.

Staged entries are ordinary files, directories and links under `files/`; what cannot be told
from them is kept here: the registry the draft belongs to (binding.py), the base version it
started from, the base paths deleted (whiteouts), base entries moved to new paths (renames reuse
stored content instead of copying it), and the commit options (type, description, metadata,
aliases).

Why two files: rewriting one JSON document on every `rm` would make `rm -r` of 10k files
quadratic. So small operations append one JSON line to `ops.<gen>.jsonl`, and the full state is
rewritten (tmp + fsync + rename) only when the journal grows long or options change. The state
file names the generation of the journal that applies on top of it, so a crash between writing a
new state and deleting the old journal can never replay an operation twice. A torn last line
(the process died mid-write) is ignored; a failed append (ENOSPC) is cut back so the next
append starts on a clean line.

Durability: journal lines are not fsynced one by one. They survive a crash of the process (the
page cache keeps them), which is the failure the mount must tolerate; a power loss may lose the
last few operations, as with any local file system without `sync`. `fsync()` on a draft file
and every commit flush the journal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artifactfs.drafts.errors import DraftStateError
from artifactfs.drafts.layout import STATE_FILE
from artifactfs.resolver.records import now_iso

log = logging.getLogger(__name__)

STATE_FORMAT = 1
COMPACT_AFTER = 4096
"""Journal lines before the state is rewritten (bounds replay time and journal size)."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old or the new content, never a mix, even
    after a crash: temporary file in the same directory, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class DraftOptions:
    """What the commit will say about the version, set by xattrs or the commit command."""

    type: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    aliases: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.type or self.description or self.metadata or self.aliases)


@dataclass
class DraftState:
    """The persistent facts of one draft (see the module docstring)."""

    entity: str
    project: str
    name: str
    base_version: int | None = None
    base_manifest_key: str | None = None
    base_digest: str | None = None
    gen: int = 0
    whiteouts: set[str] = field(default_factory=set)
    moves: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: DraftOptions = field(default_factory=DraftOptions)
    created_at: str = field(default_factory=now_iso)
    registry: dict[str, Any] | None = None
    """The registry the draft belongs to (binding.Binding as JSON; None in older drafts)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "entity": self.entity,
            "project": self.project,
            "name": self.name,
            "base_version": self.base_version,
            "base_manifest_key": self.base_manifest_key,
            "base_digest": self.base_digest,
            "gen": self.gen,
            "whiteouts": sorted(self.whiteouts),
            "moves": self.moves,
            "options": asdict(self.options),
            "created_at": self.created_at,
            "registry": self.registry,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DraftState:
        if data.get("format") != STATE_FORMAT:
            raise DraftStateError(f"unknown draft state format {data.get('format')!r}")
        opts = data.get("options") or {}
        return cls(
            entity=data["entity"],
            project=data["project"],
            name=data["name"],
            base_version=data.get("base_version"),
            base_manifest_key=data.get("base_manifest_key"),
            base_digest=data.get("base_digest"),
            gen=int(data.get("gen", 0)),
            whiteouts=set(data.get("whiteouts") or ()),
            moves=dict(data.get("moves") or {}),
            options=DraftOptions(
                type=opts.get("type"),
                description=opts.get("description"),
                metadata=opts.get("metadata"),
                aliases=list(opts.get("aliases") or ()),
            ),
            created_at=data.get("created_at") or now_iso(),
            registry=data.get("registry") if isinstance(data.get("registry"), dict) else None,
        )


class StateFile:
    """Load, journal and compact the state of the draft stored in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._journal_fd: int | None = None
        self._journal_lines = 0

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def journal_path(self, gen: int) -> Path:
        return self.root / f"ops.{gen}.jsonl"

    def exists(self) -> bool:
        return self.state_path.is_file()

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> tuple[DraftState, list[dict[str, Any]]]:
        """The compacted state and the journal operations still to apply on top of it."""
        try:
            state = DraftState.from_json(json.loads(self.state_path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DraftStateError(f"cannot read draft state {self.state_path}: {e}") from e
        ops: list[dict[str, Any]] = []
        try:
            raw = self.journal_path(state.gen).read_bytes()
        except FileNotFoundError:
            raw = b""
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                ops.append(json.loads(line))
            except ValueError:
                log.warning("%s: ignoring a torn journal line", self.journal_path(state.gen))
        self._journal_lines = len(ops)
        return state, ops

    # -- writing --------------------------------------------------------------------------------
    def write(self, state: DraftState) -> None:
        """Compact: persist the whole state under a new generation, then drop old journals."""
        self.close()
        old = state.gen
        state.gen = old + 1
        try:
            atomic_write(self.state_path, json.dumps(state.to_json()).encode())
        except BaseException:
            state.gen = old
            raise
        for path in self.root.glob("ops.*.jsonl"):
            if path.name != self.journal_path(state.gen).name:
                with contextlib.suppress(OSError):
                    path.unlink()
        self._journal_lines = 0

    def append(self, state: DraftState, op: dict[str, Any]) -> bool:
        """Journal one operation; True when the caller should compact now. Raises OSError
        (ENOSPC...) with the journal unchanged if the line cannot be written whole."""
        if self._journal_fd is None:
            self._journal_fd = os.open(
                self.journal_path(state.gen), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        fd = self._journal_fd
        line = json.dumps(op, separators=(",", ":")).encode() + b"\n"
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(28, "No space left on device")
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        self._journal_lines += 1
        return self._journal_lines >= COMPACT_AFTER

    def sync(self) -> None:
        if self._journal_fd is not None:
            os.fsync(self._journal_fd)

    def close(self) -> None:
        if self._journal_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._journal_fd)
            self._journal_fd = None
