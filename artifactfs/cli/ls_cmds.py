"""`artifactfs ls [PATH] [--type T] [--json]`: the registry's namespace, one level at a time.

PATH is empty (entities), `entity` (projects), `entity/project` (collections, like
`wandb artifact ls`), `entity/project/name` (versions with aliases) or `...:version` (files).
A name that does not exist is an error (exit 1) that says which part is missing, never an
empty listing. `--json` prints the same facts for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from artifactfs.cli.output import example, human_date, human_size, table
from artifactfs.errors import ArtifactNotFoundError, ArtifactTypeMismatchError
from artifactfs.resolver.names import check_name, parse_artifact_name
from artifactfs.resolver.registry import Registry


def _api(args: argparse.Namespace):  # -> Api, imported lazily to keep `--help` fast
    from artifactfs.sdk.api import Api

    return Api(registry=args.registry)


def _choices(names: list[str], limit: int = 10) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_entity(reg: Registry, entity: str) -> None:
    entities = reg.entities()
    if entity not in entities:
        raise ArtifactNotFoundError(f"no such entity {entity!r} (entities: {_choices(entities)})")


def check_project(reg: Registry, entity: str, project: str) -> None:
    check_entity(reg, entity)
    projects = reg.projects(entity)
    if project not in projects:
        raise ArtifactNotFoundError(
            f"no such project {entity}/{project} (projects of {entity}: {_choices(projects)})"
        )


def _check_type(kind: str, wanted: str | None, what: str) -> None:
    if wanted is not None and kind != wanted:
        raise ArtifactTypeMismatchError(f"{what} is a {kind}, not a {wanted}")


# -- one function per level: (rows for a table, header, JSON value) ------------------------------
def _collections(reg: Registry, entity: str, project: str, type_: str | None) -> Any:
    out = []
    for name in reg.collections(entity, project):
        try:
            coll = reg.collection(entity, project, name)
        except ArtifactNotFoundError:
            continue
        if type_ is not None and coll.type != type_:
            continue
        versions = reg.versions(entity, project, name)
        latest = versions[-1] if versions else None
        out.append(
            {
                "name": name,
                "type": coll.type,
                "versions": len(versions),
                "latest": f"v{latest.version}" if latest else None,
                "size": latest.size if latest else None,
                "updated": latest.created_at if latest else None,
            }
        )
    return out


def _show_collections(rows: list[dict[str, Any]]) -> str:
    return table(
        [
            [
                r["name"],
                r["type"],
                str(r["versions"]),
                r["latest"] or "-",
                human_size(r["size"]),
                human_date(r["updated"]),
            ]
            for r in rows
        ],
        ["COLLECTION", "TYPE", "VERSIONS", "LATEST", "SIZE", "UPDATED"],
    )


def _versions(reg: Registry, entity: str, project: str, name: str, type_: str | None) -> Any:
    coll = reg.collection(entity, project, name)
    _check_type(coll.type, type_, f"{entity}/{project}/{name}")
    aliases: dict[int, list[str]] = {}
    for alias, n in reg.aliases(entity, project, name).items():
        aliases.setdefault(n, []).append(alias)
    return {
        "name": f"{entity}/{project}/{name}",
        "type": coll.type,
        "versions": [
            {
                "version": f"v{v.version}",
                "aliases": sorted(aliases.get(v.version, [])),
                "files": v.file_count,
                "size": v.size,
                "created": v.created_at,
                "digest": v.digest,
                "description": v.description,
            }
            for v in reg.versions(entity, project, name)
        ],
    }


def _show_versions(data: dict[str, Any]) -> str:
    name = data["name"].rsplit("/", 1)[-1]
    rows = [
        [
            f"{name}:{v['version']}",
            ", ".join(v["aliases"]),
            str(v["files"]),
            human_size(v["size"]),
            human_date(v["created"]),
            v["digest"][:12],
        ]
        for v in data["versions"]
    ]
    head = f"{data['name']}  type={data['type']}  {len(rows)} version(s)"
    return head + "\n" + table(rows, ["VERSION", "ALIASES", "FILES", "SIZE", "CREATED", "DIGEST"])


def _files(reg: Registry, text: str, type_: str | None) -> Any:
    ref = parse_artifact_name(text)
    if not ref.entity or not ref.project:
        raise ArtifactNotFoundError(f"use entity/project/name:version, not {text!r}")
    check_project(reg, ref.entity, ref.project)
    record = reg.resolve(ref)
    _check_type(record.type, type_, record.full_name)
    manifest = reg.manifest(record)
    return {
        "name": record.full_name,
        "type": record.type,
        "aliases": reg.version_aliases(record),
        "size": record.size,
        "digest": record.digest,
        "files": [
            {"path": e.path, "size": e.size, "digest": e.digest, "ref": e.ref}
            for e in sorted(manifest, key=lambda e: e.path)
        ],
    }


def _show_files(data: dict[str, Any]) -> str:
    rows = [[f["path"], human_size(f["size"]), f["ref"] or ""] for f in data["files"]]
    head = (
        f"{data['name']}  type={data['type']}  {len(rows)} file(s), {human_size(data['size'])}"
        f"  aliases: {', '.join(data['aliases']) or '-'}"
    )
    return head + "\n" + table(rows, ["PATH", "SIZE", "REFERENCE"])


def cmd_ls(args: argparse.Namespace) -> int:
    reg = _api(args).resolver.registry
    path = (args.path or "").strip("/")
    data: Any
    if ":" in path:
        data = _files(reg, path, args.type)
        text = _show_files(data)
    else:
        parts = path.split("/") if path else []
        for part, what in zip(parts, ("entity", "project", "name"), strict=False):
            check_name(part, what)
        if not parts:
            data = reg.entities()
            text = "\n".join(data)
        elif len(parts) == 1:
            check_entity(reg, parts[0])
            data = reg.projects(parts[0])
            text = "\n".join(data)
        elif len(parts) == 2:
            check_project(reg, *parts)
            data = _collections(reg, parts[0], parts[1], args.type)
            text = _show_collections(data) if data else ""
        elif len(parts) == 3:
            check_project(reg, parts[0], parts[1])
            data = _versions(reg, parts[0], parts[1], parts[2], args.type)
            text = _show_versions(data)
        else:
            raise ArtifactNotFoundError(f"{path!r}: expected [entity[/project[/name[:version]]]]")
    if args.json:
        print(json.dumps(data, indent=2))
    elif text:
        print(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ls",
        help="list entities, projects, collections, versions or files of a version",
        **example("artifactfs ls acme/mnist --type dataset"),
    )
    p.add_argument("path", nargs="?", help="[entity[/project[/name[:version]]]]")
    p.add_argument("--type", "-t", help="only collections of this type (as wandb artifact ls)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ls)
