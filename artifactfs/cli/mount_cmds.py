"""`artifactfs mount`, `artifactfs unmount` and `artifactfs wait`.

An unmount commits the mount's drafts after the kernel has detached it (drafts/unmount.py):
`unmount` waits for those commits and prints what they made; `wait` does the same after a
plain `fusermount -u`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from artifactfs.cli.output import example
from artifactfs.drafts.commit_requests import lock_holder
from artifactfs.drafts.unmount import read_report, wait_for_owner
from artifactfs.fusefs.mount import (
    DEFAULT_ATTR_TIMEOUT,
    MountOptions,
    serve,
    start_background,
    unmount,
)
from artifactfs.fusefs.mountpoint import MountError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mount",
        help="mount the registry as a file system",
        **example(
            "artifactfs mount /mnt/af      # an empty directory; then: ls /mnt/af/acme/mnist",
            description=(
                "Show entity/project/name:alias/path as plain files, fetched lazily through the "
                "shared cache; files written under entity/project/name/ become a new version on "
                "unmount or `artifactfs commit`. Runs in the background unless --foreground."
            ),
        ),
    )
    p.add_argument("mountpoint", help="an empty directory")
    p.add_argument(
        "--nonempty",
        action="store_true",
        help="mount over a directory that has files (hidden until unmount)",
    )
    p.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground")
    p.add_argument(
        "--allow-other",
        action="store_true",
        help="let other users see the mount (needs root or user_allow_other in /etc/fuse.conf)",
    )
    p.add_argument(
        "--registry", dest="mount_registry", help="registry to mount (default: configured one)"
    )
    p.add_argument("--ttl", type=float, help="seconds before aliases and listings are re-resolved")
    p.add_argument(
        "--attr-timeout",
        type=float,
        default=DEFAULT_ATTR_TIMEOUT,
        help="kernel attribute cache seconds for immutable paths (default %(default)s)",
    )
    p.add_argument("--read-only", action="store_true", help="no drafts: every write fails")
    p.add_argument(
        "--write-cache",
        action="store_true",
        help="batch small draft writes in the kernel (fast writes; each later open of a file "
        "then costs one request to the mount: off for reading-heavy mounts)",
    )
    p.add_argument(
        "--passthrough",
        action="store_true",
        help="let the kernel read cached version files directly (big files at local-disk "
        "speed; each open then costs a request: not for many small files; needs root and "
        "libfuse >= 3.17.1)",
    )
    p.add_argument("--cache-dir", help="cache directory (default: configured one)")
    p.add_argument("--write-dir", help="where drafts are staged (default: configured one)")
    p.add_argument("--log-file", help="mount log (default ~/.local/state/artifactfs/mount.log)")
    p.add_argument(
        "--readahead-files",
        type=int,
        default=1024,
        metavar="N",
        help="after two uncached small files of one directory are read, fetch up to N of its "
        "other files in the background (remote registries; 0: off; default 1024)",
    )
    p.add_argument("--single-threaded", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--fuse-lib", choices=["fuse3", "fuse"], default="fuse3", help=argparse.SUPPRESS)
    p.set_defaults(func=_mount)

    u = sub.add_parser(
        "unmount",
        help="unmount (drafts are committed first)",
        **example("artifactfs unmount /mnt/af"),
    )
    u.add_argument("mountpoint")
    u.add_argument("--lazy", action="store_true", help="detach now even if files are open")
    u.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for the commits (1 h)"
    )
    u.set_defaults(func=_unmount)

    w = sub.add_parser(
        "wait",
        help="wait until an unmount's draft commits are done (after fusermount -u)",
        **example(
            "artifactfs wait      # after fusermount -u /mnt/af, before using the new versions",
            description=(
                "fusermount -u returns once the kernel has detached the mount; the mount then "
                "commits its drafts. This waits for those commits (of the configured write dir, "
                "or --write-dir) and prints the versions they made."
            ),
        ),
    )
    w.add_argument("--write-dir", help="the mount's write dir (default: configured one)")
    w.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (1 h)")
    w.set_defaults(func=_wait)


def _mount(args: argparse.Namespace) -> int:
    overrides = {
        k: v for k, v in (("cache_dir", args.cache_dir), ("write_dir", args.write_dir)) if v
    }
    opts = MountOptions(
        mountpoint=args.mountpoint,
        registry=args.mount_registry or args.registry,
        ttl=args.ttl,
        attr_timeout=args.attr_timeout,
        allow_other=args.allow_other,
        foreground=args.foreground,
        fuse_lib=args.fuse_lib,
        threads=not args.single_threaded,
        read_only=args.read_only,
        write_cache=args.write_cache,
        passthrough=args.passthrough,
        nonempty=args.nonempty,
        readahead_files=args.readahead_files,
        log_file=args.log_file,
        debug=args.debug,
        overrides=overrides,
    )
    if args.foreground:
        return serve(opts)
    pid = start_background(opts)
    print(
        f"mounted {opts.mountpoint} (pid {pid}); unmount with: artifactfs unmount "
        f"{args.mountpoint}",
        file=sys.stderr,
    )
    return 0


def _mount_info(mountpoint: str) -> dict[str, Any]:
    try:
        with open(os.path.join(os.path.abspath(mountpoint), ".artifactfs", "mount.json")) as f:
            info: dict[str, Any] = json.load(f)
            return info
    except (OSError, ValueError):
        return {}


def _print_report(write_dir: Path, pid: int, since: float) -> None:
    report = read_report(write_dir, pid)
    if report is None or report.finished < since:
        return
    for result in report.results:
        print(result.describe())


def _pending_drafts(mountpoint: str) -> list[str]:
    """Drafts the mount will commit on its way out (its stats.json), as it said before."""
    try:
        with open(os.path.join(os.path.abspath(mountpoint), ".artifactfs", "stats.json")) as f:
            return [str(name) for name in json.load(f)["drafts"]["pending"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _unmount(args: argparse.Namespace) -> int:
    info = _mount_info(args.mountpoint)
    pending = _pending_drafts(args.mountpoint)
    start = time.time()
    slow = threading.Timer(
        1.0,
        lambda: print(
            f"artifactfs: committing {', '.join(pending)} before the mount exits "
            f"(progress in {info.get('log_file', 'the mount log')})",
            file=sys.stderr,
        ),
    )
    slow.daemon = True
    if pending:
        slow.start()
    try:
        unmount(args.mountpoint, lazy=args.lazy, timeout=args.timeout)
    finally:
        slow.cancel()
    if info.get("write_dir") and info.get("pid"):
        _print_report(Path(info["write_dir"]), int(info["pid"]), start)
    return 0


def _wait(args: argparse.Namespace) -> int:
    from artifactfs.fusefs.mount import is_mounted
    from artifactfs.settings import load_config

    write_dir = Path(args.write_dir or load_config(registry=args.registry).write_dir)
    holder = lock_holder(write_dir)
    if holder is None or holder.get("kind") != "mount" or not holder.get("pid"):
        if holder is not None:
            print(
                f"write dir {write_dir} is in use by {holder.get('kind')} (pid {holder.get('pid')})"
            )
        print("no unmount in progress")
        last = read_report(write_dir)
        if last is not None and last.results:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.finished))
            print(f"the last one (pid {last.pid}, finished {when}):")
            for result in last.results:
                print(f"  {result.describe()}")
        return 0
    pid, mountpoint = int(holder["pid"]), holder.get("mountpoint")
    if not holder.get("unmounting") and mountpoint and is_mounted(mountpoint):
        raise MountError(
            f"{mountpoint} is still mounted (pid {pid}); unmount it first, or use "
            f"`artifactfs unmount {mountpoint}`, which waits"
        )
    print(f"waiting for the mount (pid {pid}) to commit its drafts", file=sys.stderr)
    if not wait_for_owner(write_dir, pid, args.timeout):
        raise MountError(f"the mount (pid {pid}) is still committing after {args.timeout:.0f}s")
    _print_report(write_dir, pid, 0.0)
    return 0
