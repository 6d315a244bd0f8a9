"""Finishing what a crash interrupted: commits in flight and committed drafts not yet removed.

A commit writes `committing.json` (layout.JOURNAL) before it touches the registry. On the next
start of anything that opens the write dir (a mount, `artifactfs commit`), a draft that still has
that file is *done* if a version of its collection at or after the recorded `latest` has the
recorded digest and manifest key (then the draft dir is retired), and *pending* otherwise (the journal is dropped,
the draft stays unchanged, to be committed again).

Apart from commit.py because it runs without any draft loaded, on every start, and because the
commit itself asks it once more when the registry reports a failure after the commit point.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifactfs.drafts.layout import JOURNAL, empty_trash, iter_draft_dirs, retire
from artifactfs.errors import ArtifactNotFoundError
from artifactfs.resolver.records import VersionRecord

log = logging.getLogger(__name__)


def _committed(resolver: Any, entity: str, project: str, name: str, journal: dict) -> bool:
    registry = resolver.registry
    registry.invalidate()
    try:
        versions: list[VersionRecord] = registry.versions(entity, project, name)
    except ArtifactNotFoundError:
        return False
    floor = journal.get("latest_at_start")
    key = journal.get("manifest_key")  # absent in journals of older versions
    return any(
        v.digest == journal["digest"]
        and (floor is None or v.version >= floor)
        and (key is None or v.manifest_key == key)
        for v in versions
    )


def recover(resolver: Any, root: Path) -> str | None:
    """Finish or roll back an interrupted commit of the draft in `root`:
    'done' (the version exists; draft retired), 'pending' (no version; draft kept), or None."""
    path = root / JOURNAL
    try:
        journal = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        journal = None  # torn by a crash before the atomic rename could even happen
    entity, project, name = root.parent.parent.name, root.parent.name, root.name
    if journal is not None and _committed(resolver, entity, project, name, journal):
        log.info("%s/%s/%s: an interrupted commit had completed", entity, project, name)
        retire(root)
        return "done"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    log.info("%s/%s/%s: an interrupted commit had not completed; draft kept", entity, project, name)
    return "pending"


def recover_all(resolver_for: Callable[[Path], Any], write_dir: Path) -> dict[str, str]:
    """Resolve every interrupted commit and empty the trash (start of a mount or a command).
    `resolver_for(draft dir)` is the resolver of the registry that draft belongs to: asking
    another registry whether the commit happened would commit it twice."""
    empty_trash(write_dir)
    out: dict[str, str] = {}
    for entity, project, name, root in list(iter_draft_dirs(write_dir)):
        outcome = recover(resolver_for(root), root)
        if outcome:
            out[f"{entity}/{project}/{name}"] = outcome
    return out
