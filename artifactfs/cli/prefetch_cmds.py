"""`artifactfs prefetch NAME[:alias] [PATH_PREFIX]`: fill the shared cache before an epoch.

Reading through the mount, or `artifact.download()`, is then served from the cache. The work
is resolver/prefetch.py (parallel, verified, resumable fills); this module resolves the name,
draws a progress bar on a terminal and stays quiet when piped (the exit status tells: 0 when
every entry is cached, 1 when some could not be fetched, each named on stderr).
"""

from __future__ import annotations

import argparse
import sys

from artifactfs.cli.output import example, human_size
from artifactfs.progress import interactive, progress_bar


def _prefetch(args: argparse.Namespace) -> int:
    from artifactfs.resolver.prefetch import prefetch_entries, under_prefix
    from artifactfs.sdk.api import Api  # lazily: keeps `artifactfs --help` fast

    api = Api(registry=args.registry)
    art = api.artifact(args.name)
    entries = under_prefix(art.manifest, args.prefix or "")
    if args.prefix and not entries:
        print(
            f"artifactfs: error: no file at or below {args.prefix!r} in {art.name}", file=sys.stderr
        )
        return 1
    total = sum(e.size or 0 for e in entries)
    with progress_bar(total, f"prefetch {art.name}") as advance:
        result = prefetch_entries(api.resolver, entries, jobs=args.jobs, progress=advance)
    for path, why in result.failed:
        print(f"artifactfs: error: {path}: {why}", file=sys.stderr)
    if interactive():
        print(
            f"{art.qualified_name}: {result.files} file(s); {result.cached} were "
            f"cached, {result.fetched} fetched ({human_size(result.bytes_fetched)})"
            + (f", {len(result.failed)} failed (run again to retry)" if result.failed else ""),
            file=sys.stderr,
        )
    return 1 if result.failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prefetch",
        help="fill the local cache with a version's files (before reading them via the mount)",
        **example(
            "artifactfs prefetch acme/mnist/mnist:latest train/",
            description=(
                "Fetch every file of an artifact version (or those at or below PATH_PREFIX) "
                "into the shared cache, many at once, so the next epoch through the mount reads "
                "local bytes. Already cached files are skipped, so an interrupted run resumes."
            ),
        ),
    )
    p.add_argument("name", help="[entity/][project/]name[:alias|:vN] or a digest")
    p.add_argument("prefix", nargs="?", help="only files at or below this path in the version")
    p.add_argument("-j", "--jobs", type=int, default=16, help="fetches in flight (default 16)")
    p.set_defaults(func=_prefetch)
