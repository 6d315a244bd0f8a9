"""`artifactfs commit | status | diff`: drafts (write directories) from the command line.

A commit never races a mount's writers: if a mount owns the write dir, the command asks it to
commit (fusefs/commit_requests.py) and prints its answer; otherwise the command takes the write
dir's lock itself and commits straight from disk. `status` and `diff` only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from artifactfs.cli.output import example
from artifactfs.config import Config, load_config
from artifactfs.drafts.commit import (
    JOURNAL,
    PRODUCER_CLI,
    CommitResult,
    commit_draft,
    recover_all,
)
from artifactfs.drafts.commit_requests import WriteDirLock, lock_holder, send_request
from artifactfs.drafts.draft import Draft, find_draft, iter_draft_dirs
from artifactfs.drafts.errors import DraftError, DraftNotFoundError
from artifactfs.drafts.state import DraftOptions
from artifactfs.errors import ConfigError
from artifactfs.progress import progress_bar
from artifactfs.resolver.names import check_alias, check_name
from artifactfs.resolver.resolver import Resolver

CLI_LOCK_WAIT = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="commit drafts (write directories) as new versions",
        **example("artifactfs commit acme/mnist/digits --alias best"),
    )
    p.add_argument("drafts", nargs="*", metavar="DRAFT", help="entity/project/name")
    p.add_argument("--all", action="store_true", help="every draft with changes")
    p.add_argument("--type", help="artifact type (default: the collection's, or dataset)")
    p.add_argument("--alias", action="append", default=[], help="extra alias (repeatable)")
    p.add_argument("--description", help="description of the new version")
    p.add_argument("--metadata-file", help="JSON or YAML file with the version's metadata")
    p.add_argument("--dry-run", action="store_true", help="show what would be committed")
    p.set_defaults(func=cmd_commit)

    p = sub.add_parser(
        "status", help="list drafts and their changes", **example("artifactfs status")
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "diff",
        help="files added, modified and removed in a draft",
        **example("artifactfs diff acme/mnist/digits"),
    )
    p.add_argument("draft", metavar="DRAFT", help="entity/project/name")
    p.set_defaults(func=cmd_diff)


def _config(args: argparse.Namespace) -> Config:
    return load_config(registry=getattr(args, "registry", None))


def _options(args: argparse.Namespace) -> DraftOptions | None:
    metadata = None
    if args.metadata_file:
        try:
            metadata = yaml.safe_load(Path(args.metadata_file).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read {args.metadata_file}: {e}") from e
        if not isinstance(metadata, dict):
            raise ConfigError(f"{args.metadata_file}: metadata must be a mapping")
    if args.type:
        check_name(args.type, "type")
    for alias in args.alias:
        check_alias(alias)
    options = DraftOptions(args.type, args.description, metadata, list(args.alias))
    return None if options.is_empty() else options


def _print_results(results: list[CommitResult], dry_run: bool) -> int:
    failed = 0
    for r in results:
        print(r.describe())
        if dry_run and r.diff is not None:
            _print_diff(r.diff.added, r.diff.modified, r.diff.removed, indent="  ")
        failed += r.status == "failed"
    if not results:
        print("no drafts to commit")
    return 1 if failed else 0


def cmd_commit(args: argparse.Namespace) -> int:
    if not args.drafts and not args.all:
        print("artifactfs: error: name a DRAFT (entity/project/name) or use --all", file=sys.stderr)
        return 2
    config = _config(args)
    options = _options(args)
    write_dir = Path(config.write_dir)
    wanted = None if args.all else [d.strip("/") for d in args.drafts]
    holder = lock_holder(write_dir)
    if holder is not None and holder.get("kind") == "mount":
        answer = send_request(
            write_dir,
            {
                "op": "commit",
                "drafts": wanted,
                "options": None if options is None else vars(options),
                "dry_run": args.dry_run,
                "producer": PRODUCER_CLI,
            },
        )
        if "error" in answer:
            raise DraftError(f"the mount refused the commit: {answer['error']}")
        for name in answer.get("missing", []):
            raise DraftNotFoundError(f"no draft {name} with changes in {write_dir}")
        results = [CommitResult.from_json(r) for r in answer["results"]]
        return _print_results(results, args.dry_run)
    with WriteDirLock(write_dir, "cli") as lock:
        lock.acquire(timeout=CLI_LOCK_WAIT)
        resolver = Resolver.open(config, ttl=0)
        try:
            recover_all(resolver, write_dir)
            names = wanted or [f"{e}/{p}/{n}" for e, p, n, _ in iter_draft_dirs(write_dir)]
            drafts = [find_draft(resolver, write_dir, name) for name in names]
            results = []
            for draft in drafts:
                staged = sum(p.stat().st_size for _, p in draft.staged_files())
                try:
                    with progress_bar(staged, f"commit {draft.qualified_name}") as advance:
                        results.append(
                            commit_draft(
                                draft,
                                options=options,
                                dry_run=args.dry_run,
                                producer=PRODUCER_CLI,
                                progress=advance,
                            )
                        )
                except DraftError as e:
                    results.append(CommitResult(draft.qualified_name, "failed", error=str(e)))
                finally:
                    draft.close()
            return _print_results(results, args.dry_run)
        finally:
            resolver.close()


def _summary(draft: Draft) -> dict[str, Any]:
    diff = draft.diff()
    base = draft.state.base_version
    return {
        "draft": draft.qualified_name,
        "base": "new" if base is None else f"v{base}",
        "added": len(diff.added),
        "modified": len(diff.modified),
        "removed": len(diff.removed),
        "interrupted": (draft.root / JOURNAL).exists(),
    }


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    write_dir = Path(config.write_dir)
    holder = lock_holder(write_dir)
    resolver = Resolver.open(config, ttl=0)
    try:
        rows = []
        for e, p, n, _ in iter_draft_dirs(write_dir):
            draft = find_draft(resolver, write_dir, f"{e}/{p}/{n}", readonly=True)
            rows.append(_summary(draft))
    finally:
        resolver.close()
    if holder is not None:
        print(f"write dir {write_dir} is in use by {holder.get('kind')} (pid {holder.get('pid')})")
    changed = [r for r in rows if r["added"] or r["modified"] or r["removed"]]
    if not changed:
        print("no drafts with changes")
        return 0
    print(f"{'DRAFT':40s} {'BASE':6s} {'ADDED':>7s} {'MODIFIED':>9s} {'REMOVED':>8s}")
    for r in changed:
        note = (
            "  (interrupted commit: resolved on next commit or mount)" if r["interrupted"] else ""
        )
        print(
            f"{r['draft']:40s} {r['base']:6s} {r['added']:7d} {r['modified']:9d} "
            f"{r['removed']:8d}{note}"
        )
    return 0


def _print_diff(
    added: list[str], modified: list[str], removed: list[str], indent: str = ""
) -> None:
    lines = [("A", p) for p in added] + [("M", p) for p in modified] + [("D", p) for p in removed]
    for mark, path in sorted(lines, key=lambda x: x[1]):
        print(f"{indent}{mark} {path}")


def cmd_diff(args: argparse.Namespace) -> int:
    config = _config(args)
    resolver = Resolver.open(config, ttl=0)
    try:
        draft = find_draft(resolver, Path(config.write_dir), args.draft, readonly=True)
        diff = draft.diff()
    finally:
        resolver.close()
    base = draft.state.base_version
    print(f"# {draft.qualified_name} against {'nothing (new)' if base is None else f'v{base}'}")
    _print_diff(diff.added, diff.modified, diff.removed)
    return 0
