"""`artifactfs artifact put|get|ls|cache ...`: W&B's `wandb artifact ...` spellings.

W&B groups its artifact commands under `wandb artifact`; ours are top-level. So that habits and
scripts carry over by replacing one word, the word `artifact` before one of those commands is
dropped before parsing (`artifactfs artifact cache cleanup 1GB` is `artifactfs cache cleanup
1GB`). Global options may come first, as everywhere.
"""

from __future__ import annotations

GROUPED = ("put", "get", "ls", "cache")
"""The commands `wandb artifact` has and we have under the same names."""

_TAKES_VALUE = ("--registry",)


class SpellingError(ValueError):
    """`artifactfs artifact` followed by something W&B's group does not have."""


def accept_wandb_spelling(argv: list[str]) -> list[str]:
    """`argv` without the `artifact` group word, when it names one of GROUPED."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in _TAKES_VALUE else 1
    if i >= len(argv) or argv[i] != "artifact":
        return argv
    rest = argv[i + 1 :]
    if rest and rest[0] in GROUPED:
        return argv[:i] + rest
    raise SpellingError(
        f"'artifactfs artifact' takes one of {', '.join(GROUPED)} (W&B's 'wandb artifact' "
        "commands), e.g. 'artifactfs artifact put ./data --name mnist --type dataset'"
    )
