"""`artifactfs ls | put | get | verify` end to end, through the CLI entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from artifactfs.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_put_ls_get_verify(registry_url, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha")
    (data / "sub" / "b.txt").write_text("beta")

    rc, out, _ = _run(
        capsys, "put", str(data), "acme/mnist/digits", "--alias", "best", "--description", "d"
    )
    assert rc == 0 and "acme/mnist/digits:v0" in out and "best" in out
    (data / "c.txt").write_text("gamma")
    rc, out, _ = _run(capsys, "put", str(data), "mnist/digits", "--type", "dataset")
    assert rc == 0 and "digits:v1" in out

    assert _run(capsys, "ls")[1].split() == ["acme"]
    assert _run(capsys, "ls", "acme")[1].split() == ["mnist"]
    rc, out, _ = _run(capsys, "ls", "acme/mnist")
    assert "digits" in out and "dataset" in out and "v1" in out
    rc, out, _ = _run(capsys, "ls", "acme/mnist/digits")
    lines = out.splitlines()
    v0 = next(line for line in lines if line.startswith("digits:v0"))
    v1 = next(line for line in lines if line.startswith("digits:v1"))
    assert "best" in v0 and "latest" in v1 and "9 B" in v0
    rc, out, _ = _run(capsys, "ls", "acme/mnist/digits:v1")
    assert "sub/b.txt" in out and "c.txt" in out

    dest = tmp_path / "dl"
    rc, out, _ = _run(capsys, "get", "mnist/digits:best", "--root", str(dest))
    assert rc == 0 and (dest / "sub" / "b.txt").read_text() == "beta"
    assert not (dest / "c.txt").exists()
    rc, out, _ = _run(capsys, "verify", "mnist/digits:v0", str(dest))
    assert rc == 0 and out.startswith("OK")
    rc, _, err = _run(capsys, "verify", "mnist/digits:v1", str(dest))
    assert rc == 1 and "c.txt" in err


def test_errors_are_one_clear_line(registry_url, tmp_path, capsys):
    rc, _, err = _run(capsys, "get", "acme/mnist/nothing:v0", "--root", str(tmp_path / "x"))
    assert rc == 1 and err.startswith("artifactfs: error:") and "nothing" in err
    assert not (tmp_path / "x").exists()
    (tmp_path / "f.txt").write_text("x")
    rc, _, err = _run(capsys, "put", str(tmp_path / "f.txt"), "bad name")
    assert rc == 1 and "invalid" in err
    rc, _, err = _run(capsys, "put", str(tmp_path / "f.txt"), "acme/p/x", "--alias", "v3")
    assert rc == 1 and "alias" in err
    assert Path(tmp_path / "f.txt").exists()


def test_example_runs_on_the_embedded_default(isolated_home, tmp_path):
    """examples/log_and_use.py needs no configuration at all (only the isolated XDG dirs)."""
    script = Path(__file__).parent.parent / "examples" / "log_and_use.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTFS_")}
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "points:v0" in proc.stdout and "threshold-model:v0" in proc.stdout
    assert ":v0:v0" not in proc.stdout  # qualified_name already holds the version (W&B)
    registry = isolated_home / "data" / "artifactfs" / "registry"
    assert (registry / "registry").is_dir()  # it used the embedded default location
