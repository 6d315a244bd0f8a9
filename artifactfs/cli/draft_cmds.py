"""`artifactfs commit | status | diff`: drafts (write directories) from the command line.

A commit never races a mount's writers: if a mount owns the write dir, the command asks it to
commit (drafts/commit_requests.py) and prints its answer; otherwise the command owns the write
dir itself and commits straight from disk. `status` and `diff` only read. Each draft is
committed into, and compared with, the registry it was made against (drafts/binding.py),
whatever `--registry` or the configuration say now; `status` names it when it differs. Everything about
drafts goes through `artifactfs.drafts.workspace.DraftWorkspace`; this module adds the terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from artifactfs.cli.draft_paths import resolve_draft
from artifactfs.cli.output import example
from artifactfs.drafts.contents import DraftDiff
from artifactfs.drafts.draft import parse_spec
from artifactfs.drafts.errors import DraftNotFoundError
from artifactfs.drafts.workspace import (
    PRODUCER_CLI,
    CommitResult,
    DraftOptions,
    DraftStatus,
    DraftWorkspace,
)
from artifactfs.errors import ArtifactNotFoundError, ConfigError
from artifactfs.progress import progress_bar
from artifactfs.resolver.names import check_alias, check_name
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import Config, load_config

CLI_LOCK_WAIT = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="commit drafts (write directories) as new versions",
        **example("artifactfs commit acme/mnist/digits --alias best"),
    )
    p.add_argument(
        "drafts",
        nargs="*",
        metavar="DRAFT",
        help="entity/project/name, or a path in the mount (MNT/entity/project/name, '.')",
    )
    p.add_argument("--all", action="store_true", help="every draft with changes")
    p.add_argument("--type", help="artifact type (default: the collection's, or dataset)")
    p.add_argument("--alias", action="append", default=[], help="extra alias (repeatable)")
    p.add_argument("--description", help="description of the new version")
    p.add_argument("--metadata-file", help="JSON or YAML file with the version's metadata")
    p.add_argument("--dry-run", action="store_true", help="show what would be committed")
    p.set_defaults(func=cmd_commit)

    p = sub.add_parser(
        "status",
        help="list drafts and their changes",
        **example(
            "artifactfs status      # or: cd /mnt/af/acme/mnist/digits && artifactfs status ."
        ),
    )
    p.add_argument(
        "drafts", nargs="*", metavar="DRAFT", help="only these (names or paths in the mount)"
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "diff",
        help="files added, modified and removed in a draft",
        **example("artifactfs diff acme/mnist/digits"),
    )
    p.add_argument(
        "draft", metavar="DRAFT", help="entity/project/name, or a path in the mount ('.')"
    )
    p.set_defaults(func=cmd_diff)


def _config(args: argparse.Namespace) -> Config:
    return load_config(registry=getattr(args, "registry", None))


def _targets(specs: list[str], config: Config) -> tuple[list[str], Path]:
    """Draft names for `specs` (names or paths, cli/draft_paths.py) and the write dir they are
    in: a mount's, when they were named by paths in it, else the configured one."""
    targets = [resolve_draft(spec, Path(config.write_dir)) for spec in specs]
    dirs = {t.write_dir for t in targets if t.write_dir is not None}
    if len(dirs) > 1:
        raise ConfigError("these drafts are in different mounts' write dirs: one at a time")
    return [t.name for t in targets], dirs.pop() if dirs else Path(config.write_dir)


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


def _mount_progress(bars: ExitStack) -> Callable[[dict[str, Any]], None]:
    """One progress bar per draft the mount commits for us, from its progress reports
    (drafts/commit_requests.py); drawn only on a terminal, as every bar."""
    shown: dict[str, tuple[Callable[[int], None], list[int]]] = {}

    def on_progress(report: dict[str, Any]) -> None:
        name, done = str(report.get("draft")), int(report.get("done") or 0)
        if name not in shown:
            advance = bars.enter_context(progress_bar(report.get("total"), f"commit {name}"))
            shown[name] = (advance, [0])
        advance, seen = shown[name]
        if done > seen[0]:
            advance(done - seen[0])
            seen[0] = done

    return on_progress


def cmd_commit(args: argparse.Namespace) -> int:
    if not args.drafts and not args.all:
        print("artifactfs: error: name a DRAFT (entity/project/name) or use --all", file=sys.stderr)
        return 2
    config = _config(args)
    options = _options(args)
    names, write_dir = _targets(args.drafts, config)
    wanted = None if args.all else names
    holder = DraftWorkspace.owner(write_dir)
    if holder is not None and holder.get("kind") == "mount":
        with ExitStack() as bars:
            results = DraftWorkspace.ask_owner_to_commit(
                write_dir,
                wanted,
                options,
                dry_run=args.dry_run,
                producer=PRODUCER_CLI,
                on_progress=_mount_progress(bars),
            )
        return _print_results(results, args.dry_run)
    resolver = Resolver.open(config, ttl=0)
    workspace = DraftWorkspace(resolver, write_dir)
    try:
        workspace.own("cli", timeout=CLI_LOCK_WAIT)
        drafts = [workspace.find(name) for name in wanted] if wanted else workspace.drafts()
        results = []
        for draft in drafts:
            try:
                with progress_bar(draft.staged_size(), f"commit {draft.qualified_name}") as advance:
                    results.append(
                        workspace.commit(
                            draft,
                            options,
                            dry_run=args.dry_run,
                            producer=PRODUCER_CLI,
                            progress=advance,
                        )
                    )
            finally:
                draft.close()
        return _print_results(results, args.dry_run)
    finally:
        workspace.release()
        resolver.close()


def _row(status: DraftStatus) -> dict[str, Any]:
    base = status.base_version
    return {
        "draft": status.draft,
        "base": "new" if base is None else f"v{base}",
        "added": len(status.diff.added),
        "modified": len(status.diff.modified),
        "removed": len(status.diff.removed),
        "interrupted": status.interrupted,
        "registry": status.registry,
    }


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    names, write_dir = _targets(args.drafts, config)
    holder = DraftWorkspace.owner(write_dir)
    resolver = Resolver.open(config, ttl=0)
    workspace = DraftWorkspace(resolver, write_dir)
    try:
        if names:
            rows = [_row(_status_or_unchanged(workspace, name)) for name in names]
        else:
            rows = [_row(s) for s in workspace.status()]
    finally:
        workspace.release()
        resolver.close()
    if holder is not None:
        doing = " (unmounting: committing its drafts)" if holder.get("unmounting") else ""
        print(
            f"write dir {write_dir} is in use by {holder.get('kind')} "
            f"(pid {holder.get('pid')}){doing}"
        )
    changed = [r for r in rows if r["added"] or r["modified"] or r["removed"]]
    if not changed:
        print("no drafts with changes")
        return 0
    print(f"{'DRAFT':40s} {'BASE':6s} {'ADDED':>7s} {'MODIFIED':>9s} {'REMOVED':>8s}")
    for r in changed:
        note = (
            "  (interrupted commit: resolved on next commit or mount)" if r["interrupted"] else ""
        )
        if r["registry"]:
            note += f"  (registry {r['registry']})"
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


def _status_or_unchanged(workspace: DraftWorkspace, name: str) -> DraftStatus:
    """A draft's status; a valid name with no draft on disk is a draft with no changes."""
    try:
        return workspace.status_of(name)
    except DraftNotFoundError:
        entity, project, collection = parse_spec(name)  # an invalid name is still an error
        try:
            latest = workspace.resolver.registry.aliases(entity, project, collection).get("latest")
        except ArtifactNotFoundError:
            latest = None
        if latest is None:
            raise DraftNotFoundError(
                f"no draft {name}: nothing was written there and there is no such collection"
            ) from None
        return DraftStatus(name, latest, DraftDiff([], [], []), False)


def cmd_diff(args: argparse.Namespace) -> int:
    config = _config(args)
    (name,), write_dir = _targets([args.draft], config)
    resolver = Resolver.open(config, ttl=0)
    workspace = DraftWorkspace(resolver, write_dir)
    try:
        status = _status_or_unchanged(workspace, name)
    finally:
        workspace.release()
        resolver.close()
    base = status.base_version
    where = f" in registry {status.registry}" if status.registry else ""
    if not (status.diff.added or status.diff.modified or status.diff.removed):
        print(f"# {status.draft}: no changes")
        return 0
    print(f"# {status.draft} against {'nothing (new)' if base is None else f'v{base}'}{where}")
    _print_diff(status.diff.added, status.diff.modified, status.diff.removed)
    return 0
