"""What every command shares: --version, an example in each --help, errors a person can read,
and the cache commands in the words (and W&B spellings) users know."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from mountutil import fill_cache

from artifactfs.cli import build_parser, main

CLI = [sys.executable, "-m", "artifactfs"]


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommands(sub, (*prefix, name))


def test_version():
    proc = subprocess.run([*CLI, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "artifactfs 0.1.0"


def test_every_subcommand_help_has_an_example():
    commands = dict(_subcommands(build_parser()))
    assert {("put",), ("get",), ("ls",), ("cache", "cleanup"), ("mount",)} <= set(commands)
    for path, parser in commands.items():
        text = parser.format_help()
        assert "example:\n  $ artifactfs " + " ".join(path) in text, (path, text)


def test_errors_never_show_errno_brackets(tmp_path):
    """OS errors reach the terminal as one readable line: no traceback, no `[Errno N]`."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (["cache", "info"], {"ARTIFACTFS_CACHE_DIR": str(blocker / "cache")}, "not a directory"),
        (["ls"], {"ARTIFACTFS_REGISTRY": str(blocker / "reg")}, "not a directory"),
        (["put", str(tmp_path / "missing.txt"), "p/x"], {}, "no such file or directory"),
    ]
    for argv, env, message in cases:
        proc = subprocess.run(
            [*CLI, *argv], capture_output=True, text=True, env={**os.environ, **env}, cwd=tmp_path
        )
        assert proc.returncode == 1, (argv, proc.stdout, proc.stderr)
        assert "[Errno" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("artifactfs: error:") and message in proc.stderr.lower()


def test_cache_info_in_plain_words_and_cleanup(capsys):
    fill_cache(3, 100 << 10)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "cache folder:" in out and "disk used:    300.0 KiB of 20.0 GiB allowed (0%)" in out
    assert "3 whole file(s)" in out and "blocks" not in out and "objects" not in out

    assert main(["cache", "cleanup", "150KB"]) == 0  # wandb artifact cache cleanup SIZE
    assert capsys.readouterr().out.startswith("reclaimed 200.0 KiB (2 files)")
    assert main(["cache", "cleanup", "--remove-temp", "0"]) == 0
    assert "the cache now uses 0 B" in capsys.readouterr().out
    assert main(["cache", "cleanup", "lots"]) == 1
    assert "invalid size" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["cache"], ["cache", "cleanup"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_a_draft_is_named_by_name_or_by_path(tmp_path, monkeypatch):
    """cli/draft_paths.py without a mount: a name stays a name; a path into the write dir's
    staging folder names its draft; any other path is a clear error."""
    from artifactfs.cli.draft_paths import resolve_draft
    from artifactfs.drafts.errors import DraftNotFoundError

    write_dir = tmp_path / "drafts"
    staged = write_dir / "acme" / "proj" / "ds" / "files" / "sub"
    staged.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_draft("acme/proj/ds", write_dir).name == "acme/proj/ds"
    assert resolve_draft(str(staged), write_dir).name == "acme/proj/ds"
    monkeypatch.chdir(staged)
    assert resolve_draft(".", write_dir).name == "acme/proj/ds"
    with pytest.raises(DraftNotFoundError, match="not a draft"):
        resolve_draft(str(tmp_path), write_dir)
