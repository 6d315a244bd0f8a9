"""`artifactfs alias add | move | remove` and `artifactfs delete`: curating versions.

Thin wrappers over the Python API (`Artifact.aliases` + `save()`, `Artifact.delete()`), so the
command line follows the same alias rules (no `vN`, `latest` managed by the registry) and moves
aliases with the same compare-and-swap as a script does. One difference, to protect a shell
user from a typo: `add` refuses an alias another version holds, `move` is the explicit way to
take it (W&B's `aliases.append` + `save()` moves it silently).
"""

from __future__ import annotations

import argparse
from typing import Any

from artifactfs.cli.output import example
from artifactfs.errors import ArtifactFSError, ArtifactHasAliasesError, InvalidNameError
from artifactfs.resolver.names import check_alias, parse_artifact_name


class AliasTakenError(ArtifactFSError, ValueError):
    """`alias add` of an alias another version of the collection holds."""


def _version(args: argparse.Namespace) -> Any:
    from artifactfs.sdk.api import Api

    ref = parse_artifact_name(args.name)  # InvalidNameError for a bad name
    if ref.alias is None and ref.name:
        raise InvalidNameError(
            f"name a version: {args.name}:vN or {args.name}:ALIAS (a bare name is its latest)"
        )
    return Api(registry=args.registry).artifact(args.name)


def _holder(art: Any, alias: str) -> str | None:
    """The version (`vN`) of the collection that holds `alias` now, if any."""
    rec = art._record
    registry = art._resolver_or_raise().registry
    registry.invalidate()
    n = registry.aliases(rec.entity, rec.project, rec.name).get(alias)
    return None if n is None else f"v{n}"


def cmd_alias(args: argparse.Namespace) -> int:
    if args.alias == "latest":
        raise InvalidNameError("latest is managed by the registry: it is always the newest version")
    check_alias(args.alias)
    art = _version(args)
    where = _holder(art, args.alias)
    if args.action == "remove":
        if where != art.version:
            raise InvalidNameError(f"{art.qualified_name} has no alias {args.alias!r}")
        art.aliases.remove(args.alias)
        art.save()
        print(f"{art.qualified_name}: removed alias {args.alias}")
        return 0
    if where == art.version:
        print(f"{art.qualified_name}: already has alias {args.alias}")
        return 0
    if where is not None and args.action == "add":
        raise AliasTakenError(
            f"alias {args.alias!r} is on {where}; to move it to {art.version}: "
            f"artifactfs alias move {args.name} {args.alias}"
        )
    art.aliases.append(args.alias)
    art.save()
    moved = f" (moved from {where})" if where else ""
    print(f"{art.qualified_name}: alias {args.alias}{moved}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    art = _version(args)
    name = art.qualified_name
    try:
        art.delete(delete_aliases=args.delete_aliases)
    except ArtifactHasAliasesError:
        raise ArtifactHasAliasesError(
            f"{name} has aliases {sorted(art.aliases)}: add --delete-aliases to delete them too"
        ) from None
    print(f"deleted {name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "alias",
        help="add, move or remove an alias of a version",
        **example(
            "artifactfs alias add acme/mnist/digits:v3 prod",
            "artifactfs alias move acme/mnist/digits:v4 prod   # take it from the version holding it",
            "artifactfs alias remove acme/mnist/digits:v4 prod",
        ),
    )
    p.add_argument("action", choices=["add", "move", "remove"])
    p.add_argument("name", metavar="NAME", help="[entity/][project/]name:vN (or :alias)")
    p.add_argument("alias", metavar="ALIAS")
    p.set_defaults(func=cmd_alias)

    p = sub.add_parser(
        "delete",
        help="delete an artifact version",
        **example(
            "artifactfs delete acme/mnist/digits:v2",
            description=(
                "Tombstone the version (gone from listings and the mount; `artifactfs gc` frees "
                "its blobs later). As in W&B, a version with aliases (latest counts) is refused "
                "unless --delete-aliases."
            ),
        ),
    )
    p.add_argument("name", metavar="NAME", help="[entity/][project/]name:vN (or :alias)")
    p.add_argument(
        "--delete-aliases", action="store_true", help="also delete its aliases (latest moves back)"
    )
    p.set_defaults(func=cmd_delete)
