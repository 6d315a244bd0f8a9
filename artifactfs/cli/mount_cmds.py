"""`artifactfs mount` and `artifactfs unmount`."""

from __future__ import annotations

import argparse
import sys

from artifactfs.cli.output import example
from artifactfs.fusefs.mount import (
    DEFAULT_ATTR_TIMEOUT,
    MountOptions,
    serve,
    start_background,
    unmount,
)


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
    u.set_defaults(func=_unmount)


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


def _unmount(args: argparse.Namespace) -> int:
    unmount(args.mountpoint, lazy=args.lazy)
    return 0
