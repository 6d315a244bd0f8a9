"""`artifactfs export DEST [--registry SRC]`: a registry tree any static web server can host.

The work is in resolver/export.py; this module parses arguments and prints one summary line
(plus a progress bar on a terminal).
"""

from __future__ import annotations

import argparse

from artifactfs.cli.output import example
from artifactfs.progress import progress_bar
from artifactfs.resolver.backends import open_store
from artifactfs.resolver.export import export_registry
from artifactfs.settings import load_config


def _export(args: argparse.Namespace) -> int:
    config = load_config(registry=getattr(args, "registry", None))
    store = open_store(config.registry, config)
    try:
        with progress_bar(None, "export", unit="obj") as advance:
            stats = export_registry(store, args.dest, threads=args.threads, progress=advance)
    finally:
        store.close()
    mib = stats.bytes_copied / (1 << 20)
    print(
        f"exported {stats.objects} objects from {store.url} to {args.dest} "
        f"({stats.copied} copied, {mib:.1f} MiB; {stats.unchanged} unchanged; "
        f"{stats.removed} removed). Serve it with any static web server and use "
        "registry=http(s)://HOST/PATH/ to read it."
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write the registry as a static tree for a web server (read-only HTTP registry)",
        **example(
            "artifactfs export /srv/www/registry && ARTIFACTFS_REGISTRY=https://host/registry/ "
            "artifactfs ls",
            description=(
                "Copy every object of the registry into DEST, with a listing index per "
                "directory, so any static web server (nginx, S3 website, a CDN) can serve it as "
                "a read-only registry. Re-running updates DEST incrementally."
            ),
        ),
    )
    p.add_argument("dest", help="destination directory (new, empty, or a previous export)")
    p.add_argument(
        "--registry",
        default=argparse.SUPPRESS,
        help="registry to export (default: the configured one)",
    )
    p.add_argument("--threads", type=int, default=8, help="parallel copies (default 8)")
    p.set_defaults(func=_export)
