"""`artifactfs gc [--dry-run] [--grace SECONDS]`: remove what no version references.

Thin over resolver/gc.py (which argues why it is safe while others commit): this module only
checks the grace period against the configuration, shows progress on a terminal (quiet when
piped) and prints the one-line summary.
"""

from __future__ import annotations

import argparse

from artifactfs.cli.output import example
from artifactfs.progress import progress_bar
from artifactfs.resolver.gc import GarbageCollector, GcError
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import load_config

MIN_GRACE_DEADLINES = 4
"""The grace period must outlast a few request deadlines (a reused object's refresh, the
re-check before a removal), or the timing argument of resolver/gc.py does not hold."""


def cmd_gc(args: argparse.Namespace) -> int:
    config = load_config(registry=args.registry)
    grace = config.gc_grace if args.grace is None else args.grace
    if grace < config.gc_grace:
        raise GcError(
            f"--grace {grace:g} is shorter than the configured gc_grace ({config.gc_grace:g} s): "
            "writers refresh reused content by that setting, so gc may not use less"
        )
    if grace < MIN_GRACE_DEADLINES * config.timeout:
        raise GcError(
            f"a grace period of {grace:g} s is too short for the {config.timeout:g} s request "
            f"deadline (at least {MIN_GRACE_DEADLINES * config.timeout:g} s)"
        )
    resolver = Resolver.open(config, ttl=0)
    try:
        with progress_bar(None, "gc", unit="obj") as advance:
            result = GarbageCollector(
                resolver.registry, grace, dry_run=args.dry_run, progress=advance
            ).run()
    finally:
        resolver.close()
    for key in result.missing:
        print(f"artifactfs: warning: a version names manifest {key}, which is missing")
    print(result.summary())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gc",
        help="remove blobs, manifests and unfinished uploads no version references",
        **example("artifactfs gc --dry-run", "artifactfs gc"),
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="keep unreferenced objects younger than this (default and minimum: gc_grace)",
    )
    p.set_defaults(func=cmd_gc)
