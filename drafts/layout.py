"""Where drafts live in a write dir: one directory per draft, found by walking three levels.

    WRITE_DIR/<entity>/<project>/<name>/   one draft (state.json marks it as materialized)
    WRITE_DIR/.trash/                      committed drafts on their way out (one rename)
    WRITE_DIR/.mount.lock, .requests/      ownership and commit requests (commit_requests.py)

Apart from the Draft so that recovery, the workspace and the CLI can list and retire drafts
without loading any of them, and so that the layout is written down in one place.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

STATE_FILE = "state.json"
JOURNAL = "committing.json"
"""Present in a draft dir only while its commit is in flight (commit.py, recovery.py)."""
TRASH = ".trash"


def draft_dir(write_dir: Path, entity: str, project: str, name: str) -> Path:
    return write_dir / entity / project / name


def is_materialized(root: Path) -> bool:
    """Does the draft dir `root` hold a draft (a state file), not just staged leftovers?"""
    return (root / STATE_FILE).is_file()


def iter_draft_dirs(write_dir: Path) -> Iterator[tuple[str, str, str, Path]]:
    """(entity, project, name, dir) of every materialized draft in the write dir."""
    if not write_dir.is_dir():
        return
    for ent in sorted(write_dir.iterdir()):
        if ent.name.startswith(".") or not ent.is_dir():
            continue
        for proj in sorted(ent.iterdir()):
            if not proj.is_dir():
                continue
            for name in sorted(proj.iterdir()):
                if is_materialized(name):
                    yield ent.name, proj.name, name.name, name


def write_dir_of(root: Path) -> Path:
    """The write dir holding the draft dir `root`."""
    return root.parent.parent.parent


def retire(root: Path) -> None:
    """Remove a draft's directory: one atomic rename into the trash, then a best-effort delete."""
    trash = write_dir_of(root) / TRASH
    trash.mkdir(exist_ok=True)
    target = trash / uuid.uuid4().hex
    os.rename(root, target)
    shutil.rmtree(target, ignore_errors=True)


def empty_trash(write_dir: Path) -> None:
    shutil.rmtree(write_dir / TRASH, ignore_errors=True)
