"""Published W&B snippets (examples/wandb_snippets/, sources in its README) run unchanged, each in
a fresh directory against a fresh embedded registry, as a separate process (module-level state
such as `wandb.run` starts empty, as in a real script). The first fourteen read `import
artifactfs as wandb`; the others keep `import wandb` exactly as published and run under
`artifactfs.install_as_wandb()`, called before the snippet as the one line a user adds. Each
snippet ends with assertions of what W&B does, so a snippet that runs but does the wrong thing
fails too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SNIPPETS = Path(__file__).resolve().parent.parent / "examples" / "wandb_snippets"
FILES = sorted(p.name for p in SNIPPETS.glob("*.py"))
SHIM = (
    "import runpy, sys, artifactfs; artifactfs.install_as_wandb(); "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


def test_every_snippet_is_listed_with_its_source():
    readme = (SNIPPETS / "README.md").read_text()
    assert len(FILES) >= 24
    for name in FILES:
        assert f"| {name} |" in readme, f"{name} has no source in the README"
        text = (SNIPPETS / name).read_text()
        assert ("import artifactfs as wandb" in text) != ("import wandb\n" in text)


@pytest.mark.parametrize("name", FILES)
def test_snippet_runs_unchanged(name, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ARTIFACTFS_ENTITY"}
    env.update(
        {
            "ARTIFACTFS_REGISTRY": str(tmp_path / "registry"),
            # the default entity and project as a W&B user sets them
            "WANDB_ENTITY": "entity",
            "WANDB_PROJECT": "snippets",
            "PYTHONWARNINGS": "default",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", SHIM, str(SNIPPETS / name)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
