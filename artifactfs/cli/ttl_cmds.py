"""`artifactfs ttl-sweep [--dry-run]`: delete artifact versions whose TTL has passed.

W&B deletes expired versions on its server; here there is no server, so this command (run by
hand or from cron) does it, through resolver/ttl.py. Exit status 1 if a version could not be
deleted.
"""

from __future__ import annotations

import argparse

from artifactfs.cli.output import example
from artifactfs.resolver.resolver import Resolver
from artifactfs.resolver.ttl import sweep_ttl


def cmd_ttl_sweep(args: argparse.Namespace) -> int:
    resolver = Resolver.open(registry=args.registry, ttl=0)
    found = sweep_ttl(
        resolver.registry, dry_run=args.dry_run, entity=args.entity, project=args.project
    )
    verb = "would delete" if args.dry_run else "deleted"
    failed = 0
    for item in found:
        when = item.expired_at.isoformat(timespec="seconds")
        if item.error:
            failed += 1
            print(f"FAILED {item.record.full_name} (expired {when}): {item.error}")
        else:
            print(f"{verb} {item.record.full_name} (expired {when})")
    print(f"{len(found) - failed} version(s) {verb}" + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ttl-sweep",
        help="delete artifact versions whose TTL (Artifact.ttl) has passed",
        **example(
            "artifactfs ttl-sweep --dry-run",
            "artifactfs ttl-sweep --entity acme --project mnist",
            description=(
                "Delete every artifact version past its time to live (Artifact.ttl, counted "
                "from its creation), as W&B's server does; its aliases go with it."
            ),
        ),
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.add_argument("--entity", help="only this entity")
    p.add_argument("--project", help="only this project (needs --entity)")
    p.set_defaults(func=cmd_ttl_sweep)
