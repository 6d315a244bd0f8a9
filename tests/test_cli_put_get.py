"""`artifactfs put | get | verify` with the spellings W&B and HF users type."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from artifactfs.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "training"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    return root


def test_put_with_wandb_options(registry_url, data, capsys, monkeypatch):
    monkeypatch.setenv("ARTIFACTFS_PROJECT", "mnist")
    rc, out, err = _run(
        capsys, "put", str(data), "-n", "mnist/digits", "-t", "model", "-a", "best", "-a", "prod",
        "-d", "first cut",
    )  # fmt: skip
    assert rc == 0, err
    assert "acme/mnist/digits:v0" in out and "best" in out and "prod" in out
    rc, out, _ = _run(capsys, "ls", "--json", "acme/mnist/digits")
    versions = json.loads(out)
    assert versions["type"] == "model"
    assert versions["versions"][0]["aliases"] == ["best", "latest", "prod"]
    assert versions["versions"][0]["description"] == "first cut"

    # the name defaults to the path's basename, as in `wandb artifact put ./data/training`
    rc, out, _ = _run(capsys, "put", str(data) + "/")
    assert rc == 0 and "acme/mnist/training:v0" in out

    # the same files again: nothing new, and the command says so
    rc, out, _ = _run(capsys, "put", str(data), "--name", "mnist/digits", "-t", "model")
    assert rc == 0 and out.startswith("unchanged:") and "digits:v0" in out
    rc, out, _ = _run(capsys, "ls", "--json", "acme/mnist/digits")
    assert len(json.loads(out)["versions"]) == 1

    (data / "a.txt").write_text("changed")
    rc, out, _ = _run(capsys, "put", "--type", "model", str(data), "mnist/digits")
    assert rc == 0 and "digits:v1" in out and "unchanged" not in out

    rc, _, err = _run(capsys, "put", str(data), "x", "--name", "y")
    assert rc == 1 and "two names" in err


@pytest.fixture(params=["file", "http", "s3", "gs"])
def reference_url(request, tmp_path, monkeypatch):
    """A URL naming one object holding b"referenced", for each scheme `put` takes."""
    body = b"referenced"
    if request.param == "file":
        path = tmp_path / "ref.bin"
        path.write_bytes(body)
        yield path.as_uri()
    elif request.param == "http":
        from rangeserver import RangeServer

        (tmp_path / "www").mkdir()
        (tmp_path / "www" / "ref.bin").write_bytes(body)
        server = RangeServer(tmp_path / "www")
        yield f"{server.url}/ref.bin"
        server.stop()
    else:
        server = request.getfixturevalue("s3_env")
        bucket = server.create_bucket(f"refs-{uuid.uuid4().hex[:10]}")
        server.client().put_object(Bucket=bucket, Key="data/ref.bin", Body=body)
        monkeypatch.setenv("ARTIFACTFS_GCS_ENDPOINT_URL", server.endpoint_url)
        yield f"{request.param}://{bucket}/data/ref.bin"


def test_put_url_reference(reference_url, tmp_path, capsys):
    """A URL as PATH is logged as a reference (bytes left where they are), as wandb does."""
    rc, out, err = _run(capsys, "put", reference_url, "-n", "proj/refs")
    assert rc == 0, err
    rc, out, _ = _run(capsys, "ls", "--json", "acme/proj/refs:v0")
    (entry,) = json.loads(out)["files"]
    assert entry["path"] == "ref.bin" and entry["ref"] == reference_url
    rc, out, err = _run(capsys, "get", "proj/refs:v0", "ref.bin", "--root", str(tmp_path / "r"))
    assert rc == 0, err
    assert Path(out.strip()).read_bytes() == b"referenced"
    rc, out, _ = _run(capsys, "put", reference_url)  # named after the URL's basename
    assert rc == 0 and "uncategorized/ref.bin:v0" in out


def test_get_root_and_single_files(registry_url, data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, "put", str(data), "proj/ds")[0] == 0
    rc, out, _ = _run(capsys, "get", "proj/ds:v0", "--root", str(tmp_path / "dl"))
    assert rc == 0 and _tree(tmp_path / "dl") == _tree(data)

    # one file, like `hf download repo file`: its local path is what the command prints
    rc, out, _ = _run(capsys, "get", "acme/proj/ds:latest", "sub/b.txt")
    assert rc == 0
    local = Path(out.strip())
    assert local == tmp_path / "artifacts" / "ds:v0" / "sub" / "b.txt"
    assert local.read_text() == "beta" and not (local.parent.parent / "a.txt").exists()
    rc, out, _ = _run(capsys, "get", "proj/ds", "sub", "a.txt", "--root", str(tmp_path / "two"))
    assert rc == 0 and sorted(Path(p).name for p in out.split()) == ["a.txt", "b.txt"]

    # the old `get NAME DEST` spelling is not silently taken as a file name
    rc, _, err = _run(capsys, "get", "proj/ds:v0", str(tmp_path / "dest"))
    assert rc == 1 and "--root" in err and not (tmp_path / "dest").exists()
    rc, _, err = _run(capsys, "get", "proj/ds:v0", "nope.txt")
    assert rc == 1 and "no file or directory 'nope.txt' in acme/proj/ds:v0" in err
    rc, _, err = _run(capsys, "get", "proj/ds:v0", "--type", "model")
    assert rc == 1 and "dataset" in err


def test_verify_reports_every_difference(registry_url, data, tmp_path, capsys):
    assert _run(capsys, "put", str(data), "proj/ds")[0] == 0
    root = tmp_path / "copy"
    assert _run(capsys, "get", "proj/ds", "--root", str(root))[0] == 0
    assert _run(capsys, "verify", "proj/ds", str(root))[0] == 0
    (root / "a.txt").write_text("tampered")
    (root / "sub" / "b.txt").unlink()
    (root / "new.txt").write_text("mine")
    (root / "sub" / "new2.txt").write_text("mine")
    rc, out, err = _run(capsys, "verify", "proj/ds", str(root))
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert "differs from acme/proj/ds:v0 in 4 file(s)" in lines[0]
    assert [line.split() for line in lines[1:]] == [
        ["modified:", "a.txt"],
        ["missing:", "sub/b.txt"],
        ["extra:", "new.txt"],
        ["extra:", "sub/new2.txt"],
    ]


def test_missing_version_lists_what_exists(registry_url, data, capsys):
    assert _run(capsys, "put", str(data), "proj/ds", "-a", "best")[0] == 0
    (data / "a.txt").write_text("v1")
    assert _run(capsys, "put", str(data), "proj/ds")[0] == 0
    for name, what in (("proj/ds:v7", "no version v7"), ("proj/ds:prod", "no alias 'prod'")):
        rc, out, err = _run(capsys, "get", name)
        assert rc == 1 and out == ""
        assert err.strip() == (
            f"artifactfs: error: {what} in acme/proj/ds "
            "(versions: v0, v1; aliases: best -> v0, latest -> v1)"
        )


def test_get_a_subset_by_glob_include_or_prefix(registry_url, tmp_path, capsys, monkeypatch):
    """`get NAME 'images/cat/*.png'` (a glob), `--include/--exclude` (hf download) and
    `--path-prefix` (W&B's download(path_prefix=)) fetch only part of a version."""
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "pets"
    for label in ("cat", "dog"):
        (src / "images" / label).mkdir(parents=True)
        for i in range(3):
            (src / "images" / label / f"{i}.png").write_bytes(f"{label}{i}".encode())
        (src / "images" / label / "notes.txt").write_text(label)
    assert _run(capsys, "put", str(src), "ux/pets")[0] == 0

    rc, out, err = _run(capsys, "get", "ux/pets", "images/cat/*.png", "--root", "a")
    assert rc == 0, err
    assert sorted(Path(p).name for p in out.split()) == ["0.png", "1.png", "2.png"]
    assert sorted(_tree(tmp_path / "a")) == [f"images/cat/{i}.png" for i in range(3)]

    rc, out, err = _run(
        capsys, "get", "ux/pets", "--include", "*.png", "--exclude", "*/dog/*", "--root", "b"
    )
    assert rc == 0, err
    assert sorted(_tree(tmp_path / "b")) == [f"images/cat/{i}.png" for i in range(3)]

    rc, out, err = _run(capsys, "get", "ux/pets", "--path-prefix", "images/d", "--root", "c")
    assert rc == 0, err
    assert sorted(_tree(tmp_path / "c")) == [
        *(f"images/dog/{i}.png" for i in range(3)),
        "images/dog/notes.txt",
    ]
    rc, _, err = _run(capsys, "get", "ux/pets", "images/*.jpg")
    assert rc == 1 and "no file in acme/ux/pets:v0 matches 'images/*.jpg'" in err


def test_alias_and_delete_commands(registry_url, data, tmp_path, capsys):
    """Aliases added, moved and removed, and versions deleted, from the command line, with
    the API's rules (no vN, latest is the registry's, a version with aliases needs
    --delete-aliases)."""
    import artifactfs as af

    assert _run(capsys, "put", str(data), "proj/ds")[0] == 0
    (data / "c.txt").write_text("gamma")
    assert _run(capsys, "put", str(data), "proj/ds")[0] == 0

    def aliases(version: str) -> list[str]:
        return sorted(af.Api().artifact(f"acme/proj/ds:{version}").aliases)

    rc, out, err = _run(capsys, "alias", "add", "proj/ds:v0", "prod")
    assert rc == 0 and "acme/proj/ds:v0: alias prod" in out, err
    assert aliases("v0") == ["prod"]
    rc, _, err = _run(capsys, "alias", "add", "proj/ds:v1", "prod")
    assert rc == 1 and "alias 'prod' is on v0" in err and "alias move" in err
    rc, out, err = _run(capsys, "alias", "move", "proj/ds:v1", "prod")
    assert rc == 0 and "moved from v0" in out, err
    assert aliases("v0") == [] and aliases("v1") == ["latest", "prod"]
    for bad in ("v3", "latest", "no/slash"):
        rc, _, err = _run(capsys, "alias", "add", "proj/ds:v0", bad)
        assert rc == 1 and "Traceback" not in err
    rc, out, _ = _run(capsys, "alias", "remove", "proj/ds:prod", "prod")
    assert rc == 0 and aliases("v1") == ["latest"]

    rc, _, err = _run(capsys, "delete", "proj/ds:v1")
    assert rc == 1 and "--delete-aliases" in err and "latest" in err
    rc, _, err = _run(capsys, "delete", "proj/ds")
    assert rc == 1 and "name a version" in err
    rc, out, err = _run(capsys, "delete", "proj/ds:v1", "--delete-aliases")
    assert rc == 0 and "deleted acme/proj/ds:v1" in out, err
    assert aliases("v0") == ["latest"]


def test_put_shows_hashing_progress_on_a_terminal_only(
    registry_url, tmp_path, capsys, monkeypatch, recorded_bars
):
    """A big put hashes before it uploads: its progress starts with the hashing (every byte
    counted as it is hashed), not after it; piped, nothing is drawn."""
    import os

    from artifactfs.cli import registry_cmds

    big = tmp_path / "big"
    big.mkdir()
    for i in range(3):
        (big / f"{i}.bin").write_bytes(os.urandom(3 << 20))
    with monkeypatch.context() as m:
        m.setattr(registry_cmds, "progress_bar", recorded_bars)
        assert main(["put", str(big), "proj/big"]) == 0
    (hash_desc, hash_total, hashed), (put_desc, _, _) = recorded_bars.bars
    assert (hash_desc, put_desc) == ("hash big", "put big")
    assert hash_total == 9 << 20 and sum(hashed) == 9 << 20 and len(hashed) >= 9  # per MiB
    capsys.readouterr()
    assert main(["put", str(big), "proj/big2"]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no bar
