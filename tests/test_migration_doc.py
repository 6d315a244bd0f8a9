"""docs/MIGRATING_FROM_WANDB.md stays true: every status row names the tests or snippets that
check it, those exist, and at least one of them mentions the call; a row marked "no" says why."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "MIGRATING_FROM_WANDB.md"
PLACES = [ROOT / "tests", ROOT / "examples" / "wandb_snippets"]


def _rows() -> list[tuple[str, str, list[str]]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("call", "integration") or set(cells[0]) <= {"-", " "}:
            continue
        rows.append((cells[0], cells[1], [c.strip() for c in cells[2].split(",")]))
    return rows


def _find(name: str) -> Path | None:
    for place in PLACES:
        if (place / name).is_file():
            return place / name
    return None


def test_every_row_is_checked_or_says_why_not() -> None:
    rows = _rows()
    assert len(rows) > 50
    problems = []
    for call, status, checkers in rows:
        files = [_find(c) for c in checkers]
        if not checkers or None in files:
            problems.append(f"{call}: checked by {checkers}, not all exist")
            continue
        if status.startswith("no") and not re.match(r"no — \S", status):
            problems.append(f"{call}: 'no' without a reason")
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", call.replace("wandb.", ""))
        text = "".join(f.read_text() for f in files if f is not None)
        if not any(w in text for w in words):
            problems.append(f"{call}: none of {checkers} mentions it")
    assert not problems, "\n".join(problems)
