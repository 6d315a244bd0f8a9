"""`artifactfs ls`: every level as a table and as JSON, `--type`, and names that do not exist."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from artifactfs.cli import main

CLI = [sys.executable, "-m", "artifactfs"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def logged(registry_url, tmp_path, capsys):
    """acme/proj: digits (dataset, v0 best + v1 latest) and net (model, v0)."""
    for i, (name, type_) in enumerate(
        (("digits", "dataset"), ("digits", "dataset"), ("net", "model"))
    ):
        f = tmp_path / f"f{i}.txt"
        f.write_text(f"content {i}")
        argv = ["put", str(f), f"acme/proj/{name}", "--type", type_]
        if i == 0:
            argv += ["--alias", "best"]
        assert _run(capsys, *argv)[0] == 0


def test_ls_json_and_type(logged, capsys):
    assert json.loads(_run(capsys, "ls", "--json")[1]) == ["acme"]
    assert json.loads(_run(capsys, "ls", "--json", "acme")[1]) == ["proj"]
    rc, out, _ = _run(capsys, "ls", "acme/proj", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["digits"]["type"] == "dataset" and rows["digits"]["latest"] == "v1"
    assert rows["digits"]["versions"] == 2 and rows["net"]["type"] == "model"

    rc, out, _ = _run(capsys, "ls", "acme/proj", "--type", "model")
    assert rc == 0 and "net" in out and "digits" not in out
    rc, out, _ = _run(capsys, "ls", "acme/proj", "-t", "model", "--json")
    assert [r["name"] for r in json.loads(out)] == ["net"]

    rc, out, _ = _run(capsys, "ls", "--json", "acme/proj/digits")
    data = json.loads(out)
    assert [(v["version"], v["aliases"]) for v in data["versions"]] == [
        ("v0", ["best"]),
        ("v1", ["latest"]),
    ]
    rc, out, _ = _run(capsys, "ls", "--json", "acme/proj/digits:best")
    data = json.loads(out)
    assert data["name"] == "acme/proj/digits:v0" and [f["path"] for f in data["files"]] == [
        "f0.txt"
    ]
    rc, _, err = _run(capsys, "ls", "acme/proj/digits", "--type", "model")
    assert rc == 1 and "is a dataset, not a model" in err


def test_ls_of_missing_names_fails(logged, tmp_path, capsys):
    """Exit status and message a shell user sees: which part is missing, never a blank list."""
    for path, message in (
        ("nobody", "no such entity 'nobody' (entities: acme)"),
        ("acme/nothing", "no such project acme/nothing (projects of acme: proj)"),
    ):
        proc = subprocess.run([*CLI, "ls", path], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 1, (path, proc.stdout)
        assert proc.stdout == "" and message in proc.stderr, (path, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    for path, message in (
        ("acme/nothing/digits", "no such project acme/nothing"),
        ("nobody/proj/digits:v0", "no such entity 'nobody'"),
        ("acme/proj/nothing", "no artifact collection acme/proj/nothing"),
    ):
        rc, out, err = _run(capsys, "ls", path)
        assert rc == 1 and out == "" and message in err, (path, err)
