"""The whole spec method list against a real registry, once per backend (`registry_url`)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

import artifactfs as af
from artifactfs.errors import (
    ArtifactHasAliasesError,
    ArtifactNotFoundError,
    ArtifactTypeMismatchError,
    InvalidNameError,
)
from artifactfs.sdk.wandb_run import finish


@pytest.fixture(autouse=True)
def _no_current_run():
    yield
    finish()


def _dataset(root: Path, tag: str = "") -> Path:
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_text("alpha" + tag)
    (root / "sub" / "b.bin").write_bytes(b"\x00beta" + tag.encode())
    return root


def test_log_use_and_attributes(registry_url, tmp_path):
    data = _dataset(tmp_path / "data")
    with af.init(entity="acme", project="mnist", job_type="train", config={"lr": 1}) as run:
        art = af.Artifact("mnist", type="dataset", description="MNIST", metadata={"classes": 10})
        art.add_dir(data)
        art.add(af.Table(columns=["a", "b"], data=[[1, 2]]), "tab")
        logged = run.log_artifact(art, aliases=["best"])
        assert logged is art
        assert (art.name, art.version, art.state) == ("mnist:v0", "v0", "COMMITTED")
        # W&B: qualified_name is entity/project/name, and a logged name carries its version
        assert (art.entity, art.project, art.qualified_name) == (
            "acme",
            "mnist",
            "acme/mnist/mnist:v0",
        )
        assert (art.source_name, art.source_version, art.source_entity) == (
            "mnist:v0",
            "v0",
            "acme",
        )
        assert art.source_project == "mnist" and art.source_qualified_name == "acme/mnist/mnist:v0"
        assert sorted(art.aliases) == ["best", "latest"]
        assert art.size == 5 + 5 + len(af.Table(["a", "b"], [[1, 2]]).to_bytes())
        assert len(art.id) == 32 and len(art.commit_hash) == 32
        assert art.wait() is art
        assert art.json_encode()["sequenceName"] == "mnist"

        # the same contents again: no new version, the existing one comes back
        again = af.Artifact("mnist", type="dataset")
        again.add_dir(data)
        again.add(af.Table(columns=["a", "b"], data=[[1, 2]]), "tab")
        assert run.log_artifact(again).version == "v0"

        by_name = {
            n: run.use_artifact(n).digest
            for n in (
                "mnist:best",
                "mnist:latest",
                "mnist/mnist:v0",
                "acme/mnist/mnist:v0",
                "mnist",
            )
        }
        assert set(by_name.values()) == {art.digest}
        assert run.use_artifact(art.digest).name == "mnist:v0"
        assert run.use_artifact(art).name == "mnist:v0"
        used = run.use_artifact("mnist:v0", type="dataset", aliases=["input"])
        assert sorted(used.aliases) == ["best", "input", "latest"]
        assert used.description == "MNIST" and used.metadata == {"classes": 10}
        assert used.get("tab") == af.Table(columns=["a", "b"], data=[[1, 2]])
        assert used["tab.table.json"].data == [[1, 2]] and used.get("a.txt") is None
        with pytest.raises(ArtifactTypeMismatchError):
            run.use_artifact("mnist:v0", type="model")
        for missing in ("mnist:v7", "mnist:nope", "other:latest", "0" * 32):
            with pytest.raises(ArtifactNotFoundError):
                run.use_artifact(missing)
        with pytest.raises(InvalidNameError):
            run.use_artifact("bad name:v0")
        with pytest.raises(ArtifactTypeMismatchError):
            bad = af.Artifact("mnist", type="model")
            bad.add_file(data / "a.txt")
            run.log_artifact(bad)

    run_id = run.id
    api_art = af.Api().artifact("acme/mnist/mnist:v0")
    assert api_art.logged_by().id == run_id
    assert api_art.logged_by().job_type == "train"
    assert [r.id for r in api_art.used_by()] == [run_id]
    assert af.Api().run(f"acme/mnist/{run_id}").used_artifacts()[0].name == "mnist:v0"


def test_default_download_root_follows_artifact_dir_setting(tmp_path, monkeypatch):
    data = _dataset(tmp_path / "data")
    with af.init(entity="acme", project="p") as run:
        art = af.Artifact("ds", type="dataset")
        art.add_dir(data)
        run.log_artifact(art)
    monkeypatch.setenv("ARTIFACTFS_ARTIFACT_DIR", str(tmp_path / "elsewhere"))
    root = Path(af.Api(overrides={"project": "p"}).artifact("ds:v0").download())
    assert root == tmp_path / "elsewhere" / "ds:v0"
    assert (root / "a.txt").is_file()


def test_download_checkout_verify(registry_url, tmp_path, monkeypatch):
    data = _dataset(tmp_path / "data")
    with af.init(entity="acme", project="p") as run:
        art = af.Artifact("ds", type="dataset")
        art.add_dir(data)
        run.log_artifact(art)
    monkeypatch.chdir(tmp_path)
    a = af.Api(overrides={"project": "p"}).artifact("ds:latest")
    root = Path(a.download())
    assert root == tmp_path / "artifacts" / "ds:v0"
    assert (root / "sub" / "b.bin").read_bytes() == b"\x00beta"
    a.verify()

    (root / "extra.txt").write_text("mine")
    (root / "a.txt").write_text("edited")
    a.download(root)  # restores artifact files, leaves others alone
    assert (root / "a.txt").read_text() == "alpha" and (root / "extra.txt").exists()
    with pytest.raises(ValueError, match="not in the artifact"):
        a.verify(root)
    (root / "extra.txt").unlink()
    (root / "a.txt").write_text("tampered")
    with pytest.raises(ValueError, match="does not match"):
        a.verify(root)
    cached = a._resolver.fetch(a.manifest.get("sub/b.bin"))  # a copy, never a hardlink
    assert cached.exists() and not os.path.samefile(root / "sub" / "b.bin", cached)

    (root / "junk" / "deep").mkdir(parents=True)
    (root / "junk" / "deep" / "x").write_text("x")
    assert a.checkout(root) == str(root)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "a.txt",
        "sub",
        "sub/b.bin",
    ]
    a.verify(root)

    one = a.get_path("sub/b.bin")
    assert Path(one.download(tmp_path / "single")).read_bytes() == b"\x00beta"
    assert one.ref_url().endswith("/sub/b.bin")
    with pytest.raises(KeyError):
        a.get_path("nope")


def test_save_link_delete(registry_url, tmp_path):
    with af.init(entity="acme", project="p") as run:
        v = []
        for i in range(3):
            art = af.Artifact("model", type="model")
            with art.new_file("w.bin", mode="wb") as f:
                f.write(bytes([i]) * 10)
            v.append(run.log_artifact(art))
    api = af.Api(overrides={"project": "p"})
    a = api.artifact("model:v1")
    a.aliases.append("prod")
    a.description = "second"
    a.metadata = {"acc": 0.9}
    a.save()
    b = api.artifact("model:prod")
    assert (b.version, b.description, b.metadata) == ("v1", "second", {"acc": 0.9})
    b.aliases.remove("prod")
    b.aliases.append("staging")
    b.save()
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("model:prod")
    assert api.artifact("model:staging").version == "v1"
    with pytest.raises(InvalidNameError):
        b.aliases.append("v9")  # vN is reserved for versions
        b.save()
    with pytest.raises(ValueError):
        b.metadata = {str(i): i for i in range(101)}

    b.link("acme/p/model-registry", aliases=["candidate"])
    b.link("p/model-registry", aliases=["gold"])  # same source: dedup, only aliases change
    linked = api.artifact_versions("model", "model-registry")
    assert [x.version for x in linked] == ["v0"]
    reg = api.artifact("model-registry:gold")
    assert sorted(reg.aliases) == ["candidate", "gold", "latest"]
    assert (reg.name, reg.source_name, reg.source_qualified_name) == (
        "model-registry:v0",
        "model:v1",
        "acme/p/model:v1",
    )
    assert reg.digest == b.digest and reg.logged_by().id == run.id

    latest = api.artifact("model:latest")
    assert latest.version == "v2"
    with pytest.raises(ArtifactHasAliasesError):  # W&B: a version with aliases needs delete_aliases
        latest.delete()
    assert api.artifact("model:latest").version == "v2"
    latest.delete(delete_aliases=True)
    assert latest.state == "DELETED"
    assert api.artifact("model:latest").version == "v1"
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("model:v2")
    # newest first, as W&B lists versions
    assert [x.version for x in api.artifacts("model", "model")] == ["v1", "v0"]


def test_log_paths_save_and_module_level(registry_url, tmp_path):
    data = _dataset(tmp_path / "data")
    run = af.init(entity="acme", project="p")
    from_dir = run.log_artifact(str(data), type="dataset")
    assert from_dir.name == f"run-{run.id}-data:v0" and len(from_dir.manifest) == 2
    from_file = run.log_artifact(data / "a.txt", name="single")
    assert from_file.type == "unspecified" and list(from_file.manifest.entries) == ["a.txt"]
    art = af.Artifact("auto", type="dataset")
    art.add_file(data / "a.txt")
    art.save()  # logged by the current run
    assert art.version == "v0" and art.logged_by().id == run.id
    assert af.use_artifact("auto:latest").digest == art.digest

    # an entry of a logged artifact is added by digest: no upload, same bytes on download
    derived = af.Artifact("derived", type="dataset")
    (entry,) = derived.add_reference(from_dir.get_path("sub/b.bin"), name="copied.bin")
    assert entry.birth_artifact_id == from_dir.id
    run.log_artifact(derived)
    out = Path(derived.download(tmp_path / "derived"))
    assert (out / "copied.bin").read_bytes() == b"\x00beta"
    run.finish()

    solo = af.Artifact("solo", type="dataset")
    solo.add_file(data / "sub" / "b.bin")
    af.log_artifact(solo)  # no current run: an automatic one logs it
    assert solo.logged_by().job_type == "auto"


def _log_one(registry: str, tmp: str, i: int) -> None:
    os.environ["ARTIFACTFS_REGISTRY"] = registry
    import artifactfs as af

    path = Path(tmp) / f"content-{i}.bin"
    path.write_bytes(f"content {i}".encode() * 100)
    with af.init(entity="acme", project="race") as run:
        art = af.Artifact("coll", type="dataset")
        art.add_file(path, name="data.bin")
        run.log_artifact(art)


def test_eight_processes_through_the_api(registry_url, tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_log_one, args=(registry_url, str(tmp_path), i)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    versions = af.Api(overrides={"project": "race"}).artifact_versions("dataset", "coll")
    assert [v.version for v in versions] == [f"v{i}" for i in reversed(range(8))]  # newest first
    assert len({v.digest for v in versions}) == 8
    assert af.Api().artifact("acme/race/coll:latest").version == "v7"
