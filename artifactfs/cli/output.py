"""How the CLI shows things: sizes, dates and aligned tables, readable at a glance."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any


def human_size(n: int | None) -> str:
    """`1536` -> `1.5 KiB`; None (unknown, e.g. an unsized reference) -> `-`."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_date(iso: str | None) -> str:
    """An ISO timestamp in local time to the minute."""
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns separated by two spaces, like `ls -l` output."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def example(*lines: str, description: str | None = None) -> dict[str, Any]:
    """`add_parser` keywords giving a subcommand's --help an example section (kept verbatim)."""
    return {
        "description": description,
        "epilog": "example:\n" + "\n".join(f"  $ {line}" for line in lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
