"""The README's main job: seed the embedded registry with the examples if it is empty, mount it,
and show the tree a user would browse.

    python examples/demo.py [MOUNTPOINT] [--unmount]

The mount stays up afterwards so you can explore it with ls, cat, cp or Python; pass --unmount to
take it down at the end (drafts written meanwhile are committed on unmount). The default
mountpoint is $TMPDIR/artifactfs-demo; when something else is mounted there or it holds files, the
demo takes a fresh directory beside it (an earlier demo's mount of the same registry is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import log_and_use

from artifactfs.drafts.commit_requests import lock_holder
from artifactfs.resolver.resolver import Resolver

CLI = [sys.executable, "-m", "artifactfs"]


def show_tree(root: Path, limit: int = 60) -> None:
    """A `tree`-like listing with sizes and symlink targets, walking the mount like any tool."""
    shown = 0
    for dirpath, dirnames, filenames in os.walk(root):
        links = sorted(d for d in dirnames if Path(dirpath, d).is_symlink())
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        depth = len(Path(dirpath).relative_to(root).parts)
        indent = "    " * depth
        if depth:
            print(f"{indent[:-4]}{Path(dirpath).name}/")
        for name in sorted(filenames + links):
            path = Path(dirpath, name)
            if path.is_symlink():
                print(f"{indent}{name} -> {os.readlink(path)}")
            else:
                print(f"{indent}{name}  ({path.stat().st_size} bytes)")
            shown += 1
            if shown >= limit:
                print(f"{indent}...")
                return


def cli(*args: str) -> None:
    """Run `artifactfs ARGS`; on failure its one-line error is the demo's (no traceback)."""
    proc = subprocess.run([*CLI, *args], stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)


def mounted_registry(mnt: Path) -> str | None:
    """The registry an artifactfs mount at `mnt` serves (None: not ours, or not a mount)."""
    try:
        return json.loads((mnt / ".artifactfs" / "mount.json").read_text()).get("registry")
    except (OSError, ValueError):
        return None


def choose_mountpoint(wanted: Path, registry: str) -> tuple[Path, bool]:
    """(mountpoint, already mounted by an earlier demo of this registry)."""
    if os.path.ismount(wanted) and mounted_registry(wanted) == registry:
        return wanted, True
    busy = os.path.ismount(wanted) or (wanted.is_dir() and any(wanted.iterdir()))
    if not busy:
        wanted.mkdir(parents=True, exist_ok=True)
        return wanted, False
    free = Path(tempfile.mkdtemp(prefix=wanted.name + "-", dir=wanted.parent))
    why = "something else is mounted there" if os.path.ismount(wanted) else "it is not empty"
    print(f"{wanted} is busy ({why}); mounting at {free} instead\n")
    return free, False


def main() -> int:
    default = Path(tempfile.gettempdir()) / "artifactfs-demo"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mountpoint", nargs="?", help=f"where to mount (default {default})")
    parser.add_argument("--unmount", action="store_true", help="unmount at the end")
    args = parser.parse_args()

    resolver = Resolver.open()
    registry = resolver.config.registry
    drafts_taken = lock_holder(resolver.config.write_dir) is not None
    if not resolver.registry.entities():
        print(f"seeding the empty registry at {registry} with the examples\n")
        log_and_use.main()
        print()
    resolver.close()

    if args.mountpoint:  # asked for: mount exactly there, or say why not
        mnt, reused = Path(args.mountpoint), False
        mnt.mkdir(parents=True, exist_ok=True)
    else:
        mnt, reused = choose_mountpoint(default, registry)
    if reused:
        print(f"{mnt} already shows this registry (an earlier demo); using that mount")
    elif drafts_taken:  # another mount owns the drafts folder: this one can only read
        print(f"the drafts folder is in use by another mount; mounting {mnt} read-only\n")
        cli("mount", "--read-only", str(mnt))
    else:
        cli("mount", str(mnt))
    print(f"\n$ find {mnt}  (the registry as plain files)")
    show_tree(mnt)
    model = next(mnt.glob("*/example/threshold-model:latest/model.json"), None)
    if model is not None:
        print(f"\n$ cat {model}\n{model.read_text()}")
        digest = os.getxattr(model, "user.artifact.digest").decode()
        print(f"$ getfattr -n user.artifact.digest {model}\n{digest}")
    if args.unmount:
        cli("unmount", str(mnt))
        print(f"\nunmounted {mnt}")
    else:
        print(f"\nthe mount stays up: explore {mnt}, then: .venv/bin/artifactfs unmount {mnt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
