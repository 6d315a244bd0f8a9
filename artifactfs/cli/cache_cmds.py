"""`artifactfs cache info | cleanup | prune | verify`: look at, shrink and scrub the local cache.

Works on the cache directory alone (no registry access), so it answers offline too.
`cleanup SIZE` is `wandb artifact cache cleanup`'s spelling of `prune --max-size SIZE`.
"""

from __future__ import annotations

import argparse
import json

from artifactfs.cache import BlobCache
from artifactfs.cli.output import example, human_size
from artifactfs.progress import progress_bar
from artifactfs.settings import load_config, parse_size


def _open_cache() -> BlobCache:
    config = load_config()
    return BlobCache(config.cache_dir, config.cache_size, readahead_blocks=0)


def cmd_info(args: argparse.Namespace) -> int:
    info = _open_cache().info()
    if args.json:
        print(json.dumps(info.as_dict(), indent=2))
        return 0
    used = 100.0 * info.bytes / info.limit if info.limit else 0.0
    print(f"cache folder: {info.root}")
    print(
        f"disk used:    {human_size(info.bytes)} of {human_size(info.limit)} allowed ({used:.0f}%)"
    )
    print(
        f"holds:        {info.objects} whole file(s), and parts of {info.block_keys} large "
        f"file(s) ({info.blocks} pieces)"
    )
    print(
        "shared by downloads, mounts and artifact:// reads; the least recently used files go "
        "first when it is full (artifactfs cache cleanup SIZE to shrink it now)"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-hash every cached file; exit 1 when something had to be dropped."""
    cache = _open_cache()
    with progress_bar(cache.info().bytes, "cache verify") as advance:
        result = cache.verify_all(progress=advance)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        line = f"checked {result.files} files ({human_size(result.bytes)}): {result.intact} intact"
        if result.resealed:
            line += f" ({result.resealed} re-sealed)"
        if result.corrupt:
            line += f", {result.corrupt} changed since verified (dropped)"
        if result.unverifiable:
            line += f", {result.unverifiable} with nothing to check against (dropped)"
        print(line)
    return 1 if result.corrupt else 0


def _shrink(target: int) -> int:
    result = _open_cache().prune(target_bytes=target)
    print(
        f"reclaimed {human_size(result.removed_bytes)} ({result.removed_objects} files); "
        f"the cache now uses {human_size(result.remaining_bytes)} (target {human_size(target)})"
    )
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    return _shrink(parse_size(args.size))


def cmd_prune(args: argparse.Namespace) -> int:
    target = parse_size(args.max_size) if args.max_size is not None else load_config().cache_size
    return _shrink(target)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cache",
        help="inspect, shrink or verify the local blob cache",
        **example("artifactfs cache cleanup 10GB"),
    )
    sub = p.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    sub.required = True
    info = sub.add_parser(
        "info",
        help="where the cache is, how full, what it holds",
        **example("artifactfs cache info"),
    )
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)

    cleanup = sub.add_parser(
        "cleanup",
        help="evict least-recently-used files until the cache is at most SIZE",
        **example(
            "artifactfs cache cleanup 10GB",
            description=(
                "Remove the least recently used cached files until the cache is at most SIZE "
                "(as wandb artifact cache cleanup). Units are binary: 10GB = 10 GiB; 0 empties it."
            ),
        ),
    )
    cleanup.add_argument("size", metavar="SIZE", help="e.g. 10GB, 500MB, 0")
    cleanup.add_argument(
        "--remove-temp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accepted for wandb compatibility: stale temporary files are always removed",
    )
    cleanup.set_defaults(func=cmd_cleanup)

    prune = sub.add_parser(
        "prune",
        help="evict least-recently-used files (default: down to the configured cache_size)",
        **example("artifactfs cache prune --max-size 5GiB"),
    )
    prune.add_argument(
        "--max-size",
        metavar="SIZE",
        help="shrink to at most SIZE (e.g. 5GiB, 0 empties it); default: the configured cache_size",
    )
    prune.set_defaults(func=cmd_prune)

    verify = sub.add_parser(
        "verify",
        help="re-hash every cached file and drop those that changed (refetched on next use)",
        **example(
            "artifactfs cache verify",
            description=(
                "Re-hash every cached file: whole objects against their MD5, pieces against the "
                "checksum recorded when they were fetched. Files that changed are removed (the "
                "next read fetches them again); exit status 1 if any were."
            ),
        ),
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=cmd_verify)
