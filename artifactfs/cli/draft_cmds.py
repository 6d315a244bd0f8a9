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

from artifactfs.cli.draft_paths import mount_write_dirs, resolve_draft
from artifactfs.cli.output import example
from artifactfs.drafts.contents import DraftDiff
from artifactfs.drafts.draft import parse_spec
from artifactfs.drafts.errors import DraftNotFoundError
from artifactfs.drafts.layout import draft_dir
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


def _write_dirs(config: Config) -> list[Path]:
    """The configured write dir first, then those of live mounts."""
    dirs = [Path(config.write_dir)]
    dirs += [d for d in mount_write_dirs() if d not in dirs]
    return dirs


def _where(dirs: list[Path], name: str) -> Path:
    """The write dir holding draft `name` (the configured one when none does)."""
    try:
        parts = parse_spec(name)
    except DraftNotFoundError:
        return dirs[0]
    return next((d for d in dirs if draft_dir(d, *parts).is_dir()), dirs[0])


def _targets(specs: list[str], config: Config) -> dict[Path, list[str] | None]:
    """Draft names for `specs` (names or paths, cli/draft_paths.py), grouped by the write dir
    they are in: a mount's when named by a path in it; for a name, the configured write dir or
    the live mount's that holds it. No specs: every write dir, all of its drafts (None)."""
    dirs = _write_dirs(config)
    if not specs:
        return {d: None for d in dirs if d == dirs[0] or d.is_dir()}
    groups: dict[Path, list[str] | None] = {}
    for spec in specs:
        target = resolve_draft(spec, dirs[0])
        write_dir = target.write_dir if target.write_dir is not None else _where(dirs, target.name)
        names = groups.setdefault(write_dir, [])
        assert names is not None
        names.append(target.name)
    return groups


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
    results: list[CommitResult] = []
    for write_dir, wanted in _targets([] if args.all else args.drafts, config).items():
        results += _commit_in(config, write_dir, wanted, options, args.dry_run)
    return _print_results(results, args.dry_run)


def _commit_in(
    config: Config,
    write_dir: Path,
    wanted: list[str] | None,
    options: DraftOptions | None,
    dry_run: bool,
) -> list[CommitResult]:
    """Commit `wanted` (None: every draft) of one write dir: through its mount when a mount
    owns it (progress from the mount's reports), else here."""
    holder = DraftWorkspace.owner(write_dir)
    if holder is not None and holder.get("kind") == "mount":
        with ExitStack() as bars:
            return DraftWorkspace.ask_owner_to_commit(
                write_dir,
                wanted,
                options,
                dry_run=dry_run,
                producer=PRODUCER_CLI,
                on_progress=_mount_progress(bars),
            )
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
                            draft, options, dry_run=dry_run, producer=PRODUCER_CLI, progress=advance
                        )
                    )
            finally:
                draft.close()
        return results
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
    rows = []
    for write_dir, names in _targets(args.drafts, config).items():
        holder = DraftWorkspace.owner(write_dir)
        resolver = Resolver.open(config, ttl=0)
        workspace = DraftWorkspace(resolver, write_dir)
        try:
            if names:
                rows += [_row(_status_or_unchanged(workspace, name)) for name in names]
            else:
                rows += [_row(s) for s in workspace.status()]
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
    ((write_dir, names),) = _targets([args.draft], config).items()
    assert names is not None
    (name,) = names
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
