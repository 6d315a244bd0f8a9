"""`artifactfs put | get | verify`: move versions between the registry and local files.

Thin wrappers over the Python API (so the CLI and scripts behave the same); this module parses
arguments and formats output. The spellings of `wandb artifact put/get` work here too
(`put PATH --name/-n NAME --type/-t --alias/-a --description/-d`, URL references as PATH,
`get NAME --root DIR`), and `get NAME FILE...` fetches single files, directories or globs, as
`hf download REPO FILE` / `--include GLOB` (W&B's `download(path_prefix=)`: `--path-prefix`).
Transfers show a progress bar on a terminal and stay quiet when piped.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import posixpath
import sys
from pathlib import Path
from urllib.parse import urlparse

from artifactfs.cli.output import example, human_size
from artifactfs.errors import ArtifactNotFoundError, InvalidNameError, VerifyError
from artifactfs.progress import progress_bar
from artifactfs.resolver.names import parse_artifact_name


def _api(args: argparse.Namespace):  # -> Api, imported lazily to keep `--help` fast
    from artifactfs.sdk.api import Api

    return Api(registry=args.registry)


# -- put ------------------------------------------------------------------------------------------
def _is_url(path: str) -> bool:
    return "://" in path


def _default_name(path: str) -> str:
    """W&B: the basename of the path (of a URL's path, or its bucket/host for a root URL)."""
    if _is_url(path):
        url = urlparse(path)
        return posixpath.basename(url.path.rstrip("/")) or url.netloc
    return os.path.basename(os.path.abspath(path))


def _local_size(path: str) -> int | None:
    if _is_url(path):
        return None
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def cmd_put(args: argparse.Namespace) -> int:
    from artifactfs.sdk.artifact import Artifact
    from artifactfs.sdk.wandb_run import init

    if args.name and args.name_opt and args.name != args.name_opt:
        raise InvalidNameError(f"two names given: {args.name!r} and --name {args.name_opt!r}")
    if not _is_url(args.path) and not os.path.exists(args.path):
        raise FileNotFoundError(f"no such file or directory: {args.path!r}")
    name = args.name or args.name_opt or _default_name(args.path)
    try:
        ref = parse_artifact_name(name)
    except InvalidNameError as e:
        hint = "" if (args.name or args.name_opt) else " (named after the path; pass --name)"
        raise InvalidNameError(f"{e}{hint}") from e
    if ref.alias:
        raise ArtifactNotFoundError(f"put takes a collection name without ':{ref.alias}'")
    with init(
        entity=ref.entity, project=ref.project, job_type="put", registry=args.registry
    ) as run:
        art = Artifact(ref.name, args.type, description=args.description)
        size = _local_size(args.path)
        with progress_bar(size, f"hash {ref.name}") as hashed:  # from the first second
            art._hash_progress = hashed
            if _is_url(args.path):
                art.add_reference(args.path)
            elif os.path.isdir(args.path):
                # immutable: uploaded right away, so no staged copy of the whole tree (W&B's
                # default `mutable` copies every file first, doubling disk and time for a put)
                art.add_dir(args.path, policy="immutable")
            else:
                art.add_file(args.path, policy="immutable")
            art._hash_progress = None
        with progress_bar(size, f"put {ref.name}") as advance:
            art = run.log_artifact(art, aliases=args.alias or [], progress=advance)
        logger = art.logged_by()
        unchanged = logger is None or logger.id != run.id
    where = art.qualified_name
    summary = f"{len(art.manifest)} file(s), {human_size(art.size)}"
    aliases = ", ".join(art.aliases)
    if unchanged:
        print(f"unchanged: {where} already holds these files ({summary}); aliases: {aliases}")
    else:
        print(f"{where}  {summary}  aliases: {aliases}  digest {art.digest}")
    return 0


# -- get ------------------------------------------------------------------------------------------
GLOB_CHARS = frozenset("*?[")


def _matching(manifest_paths: list[str], pattern: str) -> list[str]:
    """Entries a glob matches, as `hf download --include` does (fnmatch: `*` crosses `/`)."""
    return [p for p in manifest_paths if fnmatch.fnmatchcase(p, pattern.strip("/"))]


def _select(manifest_paths: list[str], wanted: list[str], full_name: str) -> list[str]:
    """Entries named by `wanted`: a file path, a directory (every entry below it), or a glob
    (`images/cat/*.png`)."""
    chosen: dict[str, None] = {}
    known = set(manifest_paths)
    for raw in wanted:
        rel = raw.strip("/")
        if rel in known:
            chosen[rel] = None
            continue
        if GLOB_CHARS & set(rel):
            matched = _matching(manifest_paths, rel)
            if not matched:
                raise ArtifactNotFoundError(f"no file in {full_name} matches {raw!r}")
            chosen.update(dict.fromkeys(matched))
            continue
        below = [p for p in manifest_paths if p.startswith(rel + "/")]
        if not below:
            hint = (
                f"; to download the whole version into {raw}, use --root {raw}"
                if os.sep in raw or raw.startswith(".") or os.path.isdir(raw)
                else ""
            )
            raise ArtifactNotFoundError(f"no file or directory {raw!r} in {full_name}{hint}")
        chosen.update(dict.fromkeys(below))
    return list(chosen)


def cmd_get(args: argparse.Namespace) -> int:
    from artifactfs.resolver.download import download_manifest
    from artifactfs.sdk.artifact_core import default_artifact_dir

    api = _api(args)
    art = api.artifact(args.name, type=args.type)
    full = art.qualified_name
    root = Path(args.root) if args.root else default_artifact_dir() / art.name
    if args.path_prefix is not None:  # W&B's download(path_prefix=): a plain string prefix
        with progress_bar(art.size, f"get {art.name}") as advance:
            target = art.download(str(root), path_prefix=args.path_prefix, progress=advance)
        print(f"{full} ({args.path_prefix}*) -> {target}")
        return 0
    wanted = [*args.paths, *args.include]
    if not wanted and args.exclude:
        wanted = ["*"]
    if not wanted:
        with progress_bar(art.size, f"get {art.name}") as advance:
            target = art.download(str(root), progress=advance)
        print(f"{full} -> {target}")
        return 0
    manifest = art.manifest
    paths = _select(sorted(e.path for e in manifest), wanted, full)
    paths = [p for p in paths if not any(fnmatch.fnmatchcase(p, x) for x in args.exclude)]
    size = sum(manifest.entries[p].size or 0 for p in paths)
    with progress_bar(size, f"get {art.name}") as advance:
        result = download_manifest(api.resolver, manifest, root, paths=paths, progress=advance)
    for p in paths:  # one local path per line, for $(artifactfs get NAME FILE)
        print(result.root / p)
    return 0


# -- verify ---------------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    art = _api(args).artifact(args.name)
    full = art.qualified_name
    try:
        art.verify(args.dir)
    except VerifyError as e:
        n = len(e.modified) + len(e.missing) + len(e.extra)
        print(
            f"artifactfs: verify failed: {args.dir} differs from {full} in {n} file(s)",
            file=sys.stderr,
        )
        for what, paths in (("modified", e.modified), ("missing", e.missing), ("extra", e.extra)):
            for p in paths:
                print(f"  {what + ':':9s} {p}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"artifactfs: verify failed: {e}", file=sys.stderr)
        return 1
    print(f"OK: {args.dir} matches {full} ({len(art.manifest)} files)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "put",
        help="log a file, directory or URL reference as a new artifact version",
        **example(
            "artifactfs put ./data/training --name mnist/training --type dataset --alias best",
            description=(
                "Upload PATH (a file or directory) as a new version of the collection, or record "
                "a URL (s3://, gs://, http(s)://, file://) as a reference without copying its "
                "bytes. The name defaults to PATH's basename; identical contents log nothing "
                "new (the command says 'unchanged')."
            ),
        ),
    )
    p.add_argument("path", help="file, directory, or URL reference to log")
    p.add_argument("name", nargs="?", help="[entity/][project/]name (or --name)")
    p.add_argument("--name", "-n", dest="name_opt", metavar="NAME", help="as wandb: [project/]name")
    p.add_argument("--type", "-t", default="dataset", help="artifact type (default: dataset)")
    p.add_argument(
        "--alias", "-a", action="append", help="alias (repeatable); latest is always added"
    )
    p.add_argument("--description", "-d", help="free-text description")
    p.set_defaults(func=cmd_put)

    p = subparsers.add_parser(
        "get",
        help="download an artifact version, or some of its files",
        **example(
            "artifactfs get acme/mnist/digits:v2 --root ./data",
            "artifactfs get acme/mnist/digits 'images/cat/*.png'   # a subset, by glob",
            description=(
                "Download the version NAME into --root (default ./artifacts/<name>:<version>), or "
                "only the files, directories or globs PATH... of it (or --include/--exclude, "
                "--path-prefix), printing their local paths."
            ),
        ),
    )
    p.add_argument("name", help="[entity/][project/]name[:alias|:vN] or a digest")
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files, directories or globs ('images/cat/*.png', quoted) in the artifact",
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only files matching GLOB (repeatable; as hf download --include)",
    )
    p.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip files matching GLOB"
    )
    p.add_argument(
        "--path-prefix", metavar="PREFIX", help="only paths starting with PREFIX (W&B path_prefix)"
    )
    p.add_argument("--root", help="directory to download into (default ./artifacts/<name>:vN)")
    p.add_argument("--type", help="fail unless the artifact has this type")
    p.set_defaults(func=cmd_get)

    p = subparsers.add_parser(
        "verify",
        help="check a directory against an artifact version (every difference listed)",
        **example("artifactfs verify acme/mnist/digits:v2 ./data"),
    )
    p.add_argument("name", help="[entity/][project/]name[:alias|:vN] or a digest")
    p.add_argument("dir", help="directory to check")
    p.set_defaults(func=cmd_verify)
