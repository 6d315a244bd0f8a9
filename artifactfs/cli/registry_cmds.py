"""`artifactfs ls | put | get | verify`: the registry from the command line.

Thin wrappers over the Python API (so the CLI and scripts behave the same); this module only
formats output. Transfers show a progress bar on a terminal and stay quiet when piped.
"""

from __future__ import annotations

import argparse
import os
import sys

from artifactfs.cli.output import human_date, human_size, table
from artifactfs.errors import ArtifactNotFoundError
from artifactfs.progress import progress_bar
from artifactfs.resolver.names import check_name, parse_artifact_name
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.registry import Registry


def _api(args: argparse.Namespace):  # -> Api, imported lazily to keep `--help` fast
    from artifactfs.api import Api

    return Api(registry=args.registry)


# -- ls -------------------------------------------------------------------------------------------
def _ls_versions(reg: Registry, entity: str, project: str, name: str) -> str:
    coll = reg.collection(entity, project, name)
    aliases: dict[int, list[str]] = {}
    for alias, n in reg.aliases(entity, project, name).items():
        aliases.setdefault(n, []).append(alias)
    rows = []
    for v in reg.versions(entity, project, name):
        rows.append(
            [
                f"{name}:v{v.version}",
                ", ".join(sorted(aliases.get(v.version, []))),
                str(v.file_count),
                human_size(v.size),
                human_date(v.created_at),
                v.digest[:12],
            ]
        )
    head = f"{entity}/{project}/{name}  type={coll.type}  {len(rows)} version(s)"
    return head + "\n" + table(rows, ["VERSION", "ALIASES", "FILES", "SIZE", "CREATED", "DIGEST"])


def _ls_files(reg: Registry, record: VersionRecord) -> str:
    manifest = reg.manifest(record)
    rows = [
        [e.path, human_size(e.size), e.ref or ""] for e in sorted(manifest, key=lambda e: e.path)
    ]
    head = (
        f"{record.full_name}  type={record.type}  {record.file_count} file(s), "
        f"{human_size(record.size)}  aliases: {', '.join(reg.version_aliases(record)) or '-'}"
    )
    return head + "\n" + table(rows, ["PATH", "SIZE", "REFERENCE"])


def _ls_collections(reg: Registry, entity: str, project: str) -> str:
    rows = []
    for name in reg.collections(entity, project):
        try:
            coll = reg.collection(entity, project, name)
        except ArtifactNotFoundError:
            continue
        versions = reg.versions(entity, project, name)
        latest = versions[-1] if versions else None
        rows.append(
            [
                name,
                coll.type,
                str(len(versions)),
                f"v{latest.version}" if latest else "-",
                human_size(latest.size if latest else None),
                human_date(latest.created_at if latest else None),
            ]
        )
    return table(rows, ["COLLECTION", "TYPE", "VERSIONS", "LATEST", "SIZE", "UPDATED"])


def cmd_ls(args: argparse.Namespace) -> int:
    reg = _api(args).resolver.registry
    path = (args.path or "").strip("/")
    if not path:
        out = "\n".join(reg.entities())
    elif ":" in path:
        ref = parse_artifact_name(path)
        if not ref.entity or not ref.project:
            raise ArtifactNotFoundError(f"use entity/project/name:version, not {path!r}")
        out = _ls_files(reg, reg.resolve(ref))
    else:
        parts = path.split("/")
        for part in parts:
            check_name(part)
        if len(parts) == 1:
            out = "\n".join(reg.projects(parts[0]))
        elif len(parts) == 2:
            out = _ls_collections(reg, *parts)
        elif len(parts) == 3:
            out = _ls_versions(reg, *parts)
        else:
            raise ArtifactNotFoundError(f"{path!r}: expected [entity[/project[/name[:version]]]]")
    if out:
        print(out)
    return 0


# -- put / get / verify ---------------------------------------------------------------------------
def _dir_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def cmd_put(args: argparse.Namespace) -> int:
    from artifactfs.artifact import Artifact
    from artifactfs.run import init

    if not os.path.exists(args.path):
        raise FileNotFoundError(f"no such file or directory: {args.path!r}")
    ref = parse_artifact_name(args.name)
    if ref.alias:
        raise ArtifactNotFoundError(f"put takes a collection name without ':{ref.alias}'")
    with init(
        entity=ref.entity, project=ref.project, job_type="put", registry=args.registry
    ) as run:
        art = Artifact(ref.name, args.type, description=args.description)
        if os.path.isdir(args.path):
            art.add_dir(args.path)
        else:
            art.add_file(args.path)
        with progress_bar(_dir_size(args.path), f"put {ref.name}") as advance:
            art = run.log_artifact(art, aliases=args.alias or [], progress=advance)
    print(
        f"{art.qualified_name}  {len(art.manifest)} file(s), {human_size(art.size)}"
        f"  aliases: {', '.join(art.aliases)}  digest {art.digest}"
    )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    art = _api(args).artifact(args.name, type=args.type)
    with progress_bar(art.size, f"get {art.name}") as advance:
        root = art.download(args.dest, progress=advance)
    print(f"{art.qualified_name} -> {root}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    art = _api(args).artifact(args.name)
    try:
        art.verify(args.dir)
    except ValueError as e:
        print(f"artifactfs: verify failed: {e}", file=sys.stderr)
        return 1
    print(f"OK: {args.dir} matches {art.qualified_name} ({len(art.manifest)} files)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ls", help="list entities, projects, collections, versions or files of a version"
    )
    p.add_argument("path", nargs="?", help="[entity[/project[/name[:version]]]]")
    p.set_defaults(func=cmd_ls)

    p = subparsers.add_parser("put", help="log a file or directory as a new artifact version")
    p.add_argument("path", help="file or directory to upload")
    p.add_argument("name", help="[entity/][project/]name of the collection")
    p.add_argument("--type", default="dataset", help="artifact type (default: dataset)")
    p.add_argument("--alias", action="append", help="extra alias (repeatable); latest is implied")
    p.add_argument("--description", help="free-text description")
    p.set_defaults(func=cmd_put)

    p = subparsers.add_parser("get", help="download an artifact version")
    p.add_argument("name", help="[entity/][project/]name[:alias|:vN] or a digest")
    p.add_argument("dest", nargs="?", help="directory (default ./artifacts/<name>:vN)")
    p.add_argument("--type", help="fail unless the artifact has this type")
    p.set_defaults(func=cmd_get)

    p = subparsers.add_parser("verify", help="check a directory against an artifact version")
    p.add_argument("name", help="[entity/][project/]name[:alias|:vN] or a digest")
    p.add_argument("dir", help="directory to check")
    p.set_defaults(func=cmd_verify)
