"""The `artifactfs` command line: one module per command group, each adding its subcommands.

A command module exposes `register(subparsers)`; each subcommand sets `func(args) -> int`.
Errors artifactfs raises on purpose print one clear line (no traceback) and exit 1; `--debug`
shows the traceback. Lines a person reads never carry Python's raw `[Errno N]` prefix.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from importlib.metadata import PackageNotFoundError, version

from artifactfs.cache.s3client import quiet_sdk_loggers
from artifactfs.cli.wandb_spelling import SpellingError, accept_wandb_spelling
from artifactfs.errors import ArtifactFSError
from artifactfs.logsafe import protect

COMMAND_MODULES = [
    "artifactfs.cli.ls_cmds",  # ls
    "artifactfs.cli.registry_cmds",  # put, get, verify
    "artifactfs.cli.cache_cmds",  # cache info, cache cleanup, cache prune
    "artifactfs.cli.mount_cmds",  # mount, unmount
    "artifactfs.cli.draft_cmds",  # commit, status, diff
    "artifactfs.cli.export_cmds",  # export
    "artifactfs.cli.ttl_cmds",  # ttl-sweep
    "artifactfs.cli.ui_cmds",  # ui
    "artifactfs.cli.prefetch_cmds",  # prefetch
    "artifactfs.cli.gc_cmds",  # gc
    "artifactfs.cli.alias_cmds",  # alias add/move/remove, delete
]


def _version() -> str:
    try:
        return version("artifactfs")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


def describe(e: BaseException) -> str:
    """One line for a person: `strerror: filename` for OS errors, any `[Errno N]` removed
    (also from messages that quote another error)."""
    if isinstance(e, OSError) and e.strerror and type(e).__str__ is OSError.__str__:
        text = e.strerror
        if e.filename is not None:
            text = f"{os.fsdecode(e.filename)}: {text[:1].lower()}{text[1:]}"
    else:
        text = str(e) or type(e).__name__
    return _ERRNO.sub("", text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artifactfs", description="Versioned datasets and models, mounted as a drive."
    )
    parser.add_argument("--version", action="version", version=f"artifactfs {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--registry", help="registry location (directory, s3://bucket/prefix, https://...)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue  # a command group not written yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:  # `artifactfs artifact put ...` as `wandb artifact put ...` (wandb_spelling.py)
        argv = accept_wandb_spelling(sys.argv[1:] if argv is None else list(argv))
    except SpellingError as e:
        parser.error(str(e))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="artifactfs: %(levelname)s: %(message)s",
    )
    # Secrets never reach the terminal, not even with --debug (artifactfs/logsafe.py).
    for handler in logging.getLogger().handlers:
        protect(handler)
    quiet_sdk_loggers()
    try:
        return int(args.func(args) or 0)
    except ArtifactFSError as e:
        if args.debug:
            raise
        print(f"artifactfs: error: {describe(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("artifactfs: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        if args.debug:
            raise
        print(f"artifactfs: error: {describe(e)}", file=sys.stderr)
        return 1
    except (RecursionError, UnicodeError, ValueError, TypeError, KeyError) as e:
        # A bug or hostile input no named error caught yet: one line, never a traceback.
        if args.debug:
            raise
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(
            f"artifactfs: error: {type(e).__name__}: {str(e)[:300]} (--debug shows where)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
