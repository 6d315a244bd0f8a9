"""README's quick start runs as written: a newcomer copies it into an empty directory holding a
`data/` folder, on a machine with nothing configured (the isolated XDG dirs of the suite)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks(section: str) -> list[str]:
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def test_python_quick_start_runs_as_written(isolated_home, tmp_path):
    (block,) = python_blocks("Python")
    (tmp_path / "data" / "train").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "data" / "train" / f"{i}.txt").write_text(f"sample {i}\n")
    (tmp_path / "script.py").write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTIFACTFS_", "AWS_"))}
    for _ in range(2):  # the second run logs the same files again: a no-op, no error
        done = subprocess.run(
            [sys.executable, "script.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr  # no warning, no "Exception ignored in" at exit
    import artifactfs as af

    art = af.Api().artifact("acme/mnist/mnist:prod")
    assert art.version == "v0" and sorted(art.aliases) == ["best", "latest", "prod"]
    assert sorted(e for e in art.manifest.entries) == [
        "raw/train/0.txt",
        "raw/train/1.txt",
        "raw/train/2.txt",
        "train/0.txt",
        "train/1.txt",
        "train/2.txt",
    ]


def shell_block_after(marker: str) -> list[str]:
    """The indented command block that follows the paragraph ending in `marker`."""
    text = README.read_text().split(marker, 1)[1]
    lines = text.split("\n\n", 2)[1].splitlines()
    return [line[4:].split("  #")[0].rstrip() for line in lines if line.startswith("    ")]


def test_own_data_first_steps_run_as_written(isolated_home, tmp_path):
    """README's first steps with one's own data: put, mount, browse, write, unmount (here
    at a temporary mountpoint instead of /mnt/af, with the suite's python as the venv's)."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("needs /dev/fuse")
    commands = shell_block_after("so it goes first):")
    assert commands[0] == "artifactfs unmount /tmp/artifactfs-demo"
    assert commands[1].startswith("artifactfs put data/")
    (tmp_path / "data" / "cats").mkdir(parents=True)
    (tmp_path / "data" / "cats" / "1.txt").write_text("meow\n")
    mnt = tmp_path / "mnt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "artifactfs").write_text(f'#!/bin/sh\nexec {sys.executable} -m artifactfs "$@"\n')
    (bin_dir / "artifactfs").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTFS_")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    outputs = []
    demo = tmp_path / "demo"  # as after `setup.sh demo`: its mount holds the drafts folder
    demo.mkdir()
    started = subprocess.run(["artifactfs", "mount", str(demo)], env=env, capture_output=True)
    assert started.returncode == 0, started.stderr
    try:
        for command in commands:
            command = command.replace("/mnt/af", str(mnt))
            command = command.replace("/tmp/artifactfs-demo", str(demo))
            done = subprocess.run(
                command,
                shell=True,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{command}: {done.stderr}"
            assert "Traceback" not in done.stderr and "error" not in done.stderr.lower()
            outputs.append(done.stdout)
    finally:
        for path in (mnt, demo):
            subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True)
    assert "cats" in outputs[3]
    assert "acme/first/data:v1" in outputs[-1]
