"""A draft named as people point at it: `entity/project/name`, or a path in the mount.

`artifactfs diff /mnt/af/ux/pets/pets`, `artifactfs status .` from inside a draft, or a path
into the draft's staging folder in the write dir all name the same draft. A path in a mount
also names the mount's write dir (from `MNT/.artifactfs/mount.json`), which may not be the
configured one. A path into a version (`pets:v3/...`) is refused with the draft it belongs to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from artifactfs.drafts.errors import DraftNotFoundError
from artifactfs.fsutil import mount_table


@dataclass
class DraftTarget:
    name: str
    """`entity/project/name`."""
    write_dir: Path | None = None
    """The mount's write dir when the draft was named by a path in a mount."""


def _write_dir_of(mountpoint: Path) -> Path | None:
    """The write dir an artifactfs mount states in its `.artifactfs/mount.json` (None for
    another file system, or a mount that is dead or not ours to read)."""
    try:
        write_dir = json.loads((mountpoint / ".artifactfs" / "mount.json").read_text())["write_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(write_dir) if isinstance(write_dir, str) and write_dir else None


def _mount_root(path: Path) -> tuple[Path, Path] | None:
    """The artifactfs mount holding `path` and its write dir, if any."""
    for candidate in (path, *path.parents):
        if os.path.ismount(candidate):
            write_dir = _write_dir_of(candidate)
            return None if write_dir is None else (candidate, write_dir)
    return None


def mount_write_dirs() -> list[Path]:
    """The write dirs of this machine's live artifactfs mounts. WHY: a mount started with
    `--write-dir DIR` keeps its drafts there, and `commit`/`status` run without that flag
    must still find them."""
    try:
        table = mount_table()
    except OSError:
        return []
    found = (_write_dir_of(Path(mp)) for mp, kind in table if kind == "fuse.artifactfs")
    return [d for d in found if d is not None]


def _in_write_dir(path: Path, write_dir: Path) -> str | None:
    """`WRITE_DIR/entity/project/name[/...]` -> the draft's name."""
    try:
        rel = path.relative_to(write_dir.resolve()).parts
    except ValueError:
        return None
    if len(rel) >= 3 and not any(p.startswith(".") for p in rel[:3]):
        return "/".join(rel[:3])
    return None


def _looks_like_path(spec: str) -> bool:
    return spec in (".", "..") or spec.startswith(("/", "./", "../", "~")) or os.path.exists(spec)


def resolve_draft(spec: str, write_dir: Path) -> DraftTarget:
    """`spec` (a name or a path, see the module docstring) -> the draft it names."""
    if not _looks_like_path(spec):
        return DraftTarget(spec.strip("/"))
    path = Path(os.path.abspath(os.path.expanduser(spec)))
    mount = _mount_root(path)
    if mount is not None:
        root, mount_write_dir = mount
        parts = path.relative_to(root).parts
        if len(parts) < 3:
            raise DraftNotFoundError(
                f"{spec} is not inside a draft: drafts are MOUNT/entity/project/name/"
            )
        entity, project, name = parts[:3]
        if ":" in name:
            collection = name.split(":", 1)[0]
            raise DraftNotFoundError(
                f"{spec} is in version {entity}/{project}/{name}, which is read-only; its "
                f"draft is {root / entity / project / collection}"
            )
        return DraftTarget(f"{entity}/{project}/{name}", mount_write_dir)
    in_write_dir = _in_write_dir(path.resolve(), write_dir)
    if in_write_dir is not None:
        return DraftTarget(in_write_dir)
    raise DraftNotFoundError(
        f"{spec} is not a draft: name one as entity/project/name, or give a path inside an "
        "artifactfs mount (MOUNT/entity/project/name)"
    )
