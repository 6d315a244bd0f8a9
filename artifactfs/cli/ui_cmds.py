"""`artifactfs ui`: a web page over the configured registry (artifactfs/ui); read-only unless
`--allow-edits` (aliases only)."""

from __future__ import annotations

import argparse
import sys

from artifactfs.cli.output import example
from artifactfs.settings import load_config


def _ui(args: argparse.Namespace) -> int:
    try:
        from artifactfs.ui.server import Server, bound_memory
    except ImportError as e:  # the ui extra is not installed
        print(
            f"artifactfs: error: the web page needs {e.name}: pip install 'artifactfs[ui]'",
            file=sys.stderr,
        )
        return 1
    from artifactfs.resolver.resolver import Resolver

    bound_memory()  # before any thread starts: each would get a malloc arena of its own
    config = load_config(registry=getattr(args, "registry", None))
    resolver = Resolver.open(config)
    try:
        server = Server(
            resolver,
            args.host,
            args.port,
            allow_remote=args.allow_remote,
            lineage_hops=args.hops,
            allow_edits=args.allow_edits,
        )
    except BaseException:
        resolver.close()
        raise
    if not server.loopback:
        print(
            f"artifactfs ui: WARNING: serving on {args.host} without a login: anyone who can "
            f"reach port {server.port} can read the registry {config.registry}"
            + (" and move its aliases" if args.allow_edits else ""),
            file=sys.stderr,
        )
    mode = "aliases editable" if args.allow_edits else "read-only"
    print(f"artifactfs ui: {server.url} ({mode}; Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        resolver.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ui",
        help="browse the registry in a web browser (read-only, on 127.0.0.1)",
        **example(
            "artifactfs ui --port 8765   # then open http://127.0.0.1:8765/",
            description=(
                "Serve a web page over the configured registry: projects, collections, "
                "versions, files with previews (image grids, paged tables with column "
                "statistics, rendered READMEs), diffs between versions, lineage pictures and "
                "runs. It only reads unless --allow-edits (then aliases can be added, moved and "
                "removed). It listens on 127.0.0.1 without a login; another address needs "
                "--allow-remote."
            ),
        ),
    )
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0: any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host: anyone who reaches the port can read the registry",
    )
    p.add_argument(
        "--allow-edits",
        action="store_true",
        help="let the page add, move and remove aliases (off: the page only reads)",
    )
    p.add_argument(
        "--hops", type=int, default=2, help="lineage pictures: edges from the version (default 2)"
    )
    p.add_argument(
        "--registry",
        default=argparse.SUPPRESS,
        help="registry to show (default: the configured one)",
    )
    p.set_defaults(func=_ui)
