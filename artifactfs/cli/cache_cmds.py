"""`artifactfs cache info | prune | verify`: look at, shrink and scrub the shared local blob cache.

Works on the cache directory alone (no registry access), so it answers offline too.
"""

from __future__ import annotations

import argparse
import json

from artifactfs.cache import BlobCache
from artifactfs.cli.output import human_size
from artifactfs.config import load_config, parse_size
from artifactfs.progress import progress_bar


def _open_cache() -> BlobCache:
    config = load_config()
    return BlobCache(config.cache_dir, config.cache_size, readahead_blocks=0)


def cmd_info(args: argparse.Namespace) -> int:
    info = _open_cache().info()
    if args.json:
        print(json.dumps(info.as_dict(), indent=2))
        return 0
    used = 100.0 * info.bytes / info.limit if info.limit else 0.0
    print(f"cache:   {info.root}")
    print(f"used:    {human_size(info.bytes)} of {human_size(info.limit)} ({used:.0f}%)")
    print(f"objects: {info.objects} whole, {info.blocks} blocks of {info.block_keys} big entries")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    cache = _open_cache()
    target = parse_size(args.max_size) if args.max_size is not None else cache.max_bytes
    result = cache.prune(target_bytes=target)
    print(
        f"removed {result.removed_objects} files ({human_size(result.removed_bytes)}); "
        f"{human_size(result.remaining_bytes)} left (limit {human_size(target)})"
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


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cache", help="inspect, shrink or verify the local blob cache")
    sub = p.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    sub.required = True
    info = sub.add_parser("info", help="size, limit and object count of the cache")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    prune = sub.add_parser("prune", help="evict least-recently-used objects")
    prune.add_argument(
        "--max-size",
        metavar="SIZE",
        help="shrink to at most SIZE (e.g. 5GiB, 0 empties it); default: the configured cache_size",
    )
    prune.set_defaults(func=cmd_prune)
    verify = sub.add_parser(
        "verify",
        help="re-hash every cached file and drop those that changed (refetched on next use)",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=cmd_verify)
