"""The README's main job: seed the embedded registry with the examples if it is empty, mount it,
and show the tree a user would browse.

    python examples/demo.py [MOUNTPOINT] [--unmount]

The mount stays up afterwards so you can explore it with ls, cat, cp or Python; pass --unmount to
take it down at the end (drafts written meanwhile are committed on unmount).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import log_and_use

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mountpoint", nargs="?", default="/tmp/artifactfs-demo")
    parser.add_argument("--unmount", action="store_true", help="unmount at the end")
    args = parser.parse_args()

    resolver = Resolver.open()
    if not resolver.registry.entities():
        print(f"seeding the empty registry at {resolver.config.registry} with the examples\n")
        log_and_use.main()
        print()
    resolver.close()

    mnt = Path(args.mountpoint)
    if os.path.ismount(mnt):
        subprocess.run([*CLI, "unmount", str(mnt)], check=True)
    mnt.mkdir(parents=True, exist_ok=True)
    subprocess.run([*CLI, "mount", str(mnt)], check=True)
    print(f"\n$ find {mnt}  (the registry as plain files)")
    show_tree(mnt)
    model = next(mnt.glob("*/example/threshold-model:latest/model.json"), None)
    if model is not None:
        print(f"\n$ cat {model}\n{model.read_text()}")
        digest = os.getxattr(model, "user.artifact.digest").decode()
        print(f"$ getfattr -n user.artifact.digest {model}\n{digest}")
    if args.unmount:
        subprocess.run([*CLI, "unmount", str(mnt)], check=True)
        print(f"\nunmounted {mnt}")
    else:
        print(f"\nthe mount stays up: explore {mnt}, then: .venv/bin/artifactfs unmount {mnt}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
