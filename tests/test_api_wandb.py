"""The rest of the W&B surface (issue 11): runs' log/summary/config/history, init's arguments,
the module-level globals, models and links, the artifact calls W&B added since the spec, the
Api's collections/types/runs, TTL. Calls that touch storage run once per backend
(`registry_url`: the embedded directory and a real SeaweedFS)."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import types
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import artifactfs as wandb
from artifactfs.cli import main as cli_main
from artifactfs.errors import (
    ArtifactHasAliasesError,
    ArtifactNotFoundError,
    ArtifactNotLoggedError,
    ConfigError,
    InvalidNameError,
    RunNotFoundError,
    UsageError,
)
from artifactfs.resolver import keys
from artifactfs.resolver.ttl import sweep_ttl
from artifactfs.sdk import run_data
from artifactfs.settings import load_config


@pytest.fixture(autouse=True)
def _no_current_run():
    yield
    wandb.finish()


def _file(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _logged(run, name: str, content: str, type_: str = "dataset", **kw):
    art = wandb.Artifact(name, type=type_)
    with art.new_file("f.txt") as f:
        f.write(content)
    return run.log_artifact(art, **kw)


# -- module-level globals and init -----------------------------------------------------------------
def test_module_globals_follow_the_current_run(registry_url):
    assert wandb.run is None
    with pytest.raises(UsageError):
        wandb.log({"x": 1})
    with pytest.raises(UsageError):
        wandb.config["lr"]
    with pytest.raises(UsageError):
        wandb.summary["x"]
    assert wandb.login() is True
    run = wandb.init(project="p", config={"lr": 0.1})
    assert wandb.run is run and wandb.config.lr == 0.1 and wandb.config["lr"] == 0.1
    wandb.config.epochs = 3
    wandb.log({"loss": 1.0})
    assert wandb.summary["loss"] == 1.0
    # plain attributes, as in wandb: no submodule hides behind them
    assert not isinstance(wandb.config, types.ModuleType) and wandb.config is run.config
    assert wandb.summary is run.summary
    assert wandb.init(project="other") is run  # W&B: a run in progress is returned
    new = wandb.init(project="p", reinit="create_new")
    assert new is not run and wandb.run is new
    again = wandb.init(project="p", reinit=True)  # finish_previous
    assert new.state == "finished" and wandb.run is again
    wandb.finish()
    assert wandb.run is None
    with pytest.raises(UsageError):  # back to the pre-init placeholders, as W&B's finish does
        wandb.config["lr"]
    stored = wandb.Api().run(f"p/{run.id}")
    assert stored.config == {"lr": 0.1, "epochs": 3}


def test_init_arguments_are_stored_or_accepted(registry_url, tmp_path):
    args = argparse.Namespace(lr=0.5, batch=32, _private=1)
    run = wandb.init(
        project="p",
        job_type="modify dataset",  # spaces, as W&B allows
        name="my run",
        group="ablation",
        tags=["a", "b c"],
        notes="first try",
        config=args,
        config_exclude_keys=["batch"],
        dir=tmp_path,
        mode="offline",
        settings={"silent": True},
        save_code=True,
    )
    assert run.dir.startswith(str(tmp_path)) and os.path.isdir(run.dir)
    assert run.tags == ("a", "b c") and run.url is None and not run.offline
    run.tags = (*run.tags, "d")
    run.name = "renamed"
    run.finish()
    stored = wandb.Api().run(f"p/{run.id}")
    assert (stored.job_type, stored.name, stored.group, stored.notes) == (
        "modify dataset",
        "renamed",
        "ablation",
        "first try",
    )
    assert stored.tags == ["a", "b c", "d"] and stored.config == {"lr": 0.5}
    with pytest.raises(InvalidNameError):
        wandb.init(project="p", job_type="bad\njob")


def test_wandb_environment_variables(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTIFACTFS_ENTITY")
    for var, value in {
        "WANDB_ENTITY": "team",
        "WANDB_PROJECT": "proj",
        "WANDB_ARTIFACT_DIR": str(tmp_path / "arts"),
        "WANDB_CACHE_DIR": str(tmp_path / "wcache"),
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:1",
    }.items():
        monkeypatch.setenv(var, value)
    cfg = load_config()
    assert (cfg.entity, cfg.project, cfg.s3_endpoint_url) == ("team", "proj", "http://127.0.0.1:1")
    assert cfg.artifact_dir == tmp_path / "arts"
    assert cfg.cache_dir == tmp_path / "wcache" / "artifactfs"
    monkeypatch.setenv("ARTIFACTFS_PROJECT", "ours")  # ours wins
    monkeypatch.setenv("ARTIFACTFS_S3_ENDPOINT_URL", "http://127.0.0.1:2")
    cfg = load_config()
    assert (cfg.project, cfg.s3_endpoint_url) == ("ours", "http://127.0.0.1:2")


# -- log, summary, config, history ----------------------------------------------------------------
def test_log_summary_config_and_history(registry_url):
    with wandb.init(project="p", job_type="train", config={"lr": 0.1}) as run:
        run.log({"loss": 3.0})  # step 0
        run.log({"loss": 2.0}, commit=False)  # accumulates into step 1
        run.log({"acc": 0.5})  # ... and commits it
        run.log({"loss": 1.0}, step=5)  # step 5 stays open
        run.log({"acc": 0.7}, step=5)
        run.log({"loss": 9.0}, step=2)  # lower than the current step: ignored
        run.log({"loss": 0.5}, step=6)  # closes step 5
        assert run.step == 6
        run.summary["best"] = 0.9
        run.summary.update({"note": "ok"})
        run.config.update({"bs": 8})
        run.config.update({"bs": 8})  # the same value again is fine
        with pytest.raises(ConfigError):
            run.config.update({"bs": 16})
        run.config.update({"bs": 16}, allow_val_change=True)
        with pytest.raises(TypeError):
            run.log({1: 2})
    with pytest.raises(UsageError):
        run.log({"late": 1})
    stored = wandb.Api().run(f"acme/p/{run.id}")
    rows = stored.history(pandas=False)
    assert [r["_step"] for r in rows] == [0, 1, 5, 6]
    assert rows[1]["loss"] == 2.0 and rows[1]["acc"] == 0.5
    assert rows[2]["loss"] == 1.0 and rows[2]["acc"] == 0.7
    assert all("_runtime" in r and "_timestamp" in r for r in rows)
    frame = stored.history()
    assert list(frame["_step"]) == [0, 1, 5, 6]
    assert [r["_step"] for r in stored.scan_history(keys=["acc"])] == [1, 5]
    assert [r["_step"] for r in stored.scan_history(min_step=1, max_step=6)] == [1, 5]
    assert len(stored.history(samples=2, pandas=False)) == 2
    summary = stored.summary
    assert (summary["loss"], summary["acc"], summary["best"], summary["note"]) == (
        0.5,
        0.7,
        0.9,
        "ok",
    )
    assert summary._json_dict["_step"] == 6
    assert stored.config == {"lr": 0.1, "bs": 16}
    assert (stored.state, stored.job_type) == ("finished", "train")


def test_history_costs_o_rows_in_create_only_chunks(registry_url, monkeypatch):
    monkeypatch.setattr(run_data, "FLUSH_ROWS", 10)
    run = wandb.init(project="p")
    written: list[str] = []
    store = run.resolver.registry.store
    real_create, real_put = store.create, store.put

    def create(key, data):
        written.append(key)
        return real_create(key, data)

    def put(key, data):
        assert "/history/" not in key, "history must never be rewritten"
        return real_put(key, data)

    monkeypatch.setattr(store, "create", create)
    monkeypatch.setattr(store, "put", put)
    for i in range(35):
        run.log({"i": i})
    run.finish()
    chunks = [k for k in written if "/history/" in k]
    assert len(chunks) == 4 == len(set(chunks))  # 10 + 10 + 10 + 5 rows, each chunk once
    assert [r["i"] for r in wandb.Api().run(f"p/{run.id}").scan_history()] == list(range(35))


def test_resume_continues_the_record_and_history(registry_url):
    with pytest.raises(UsageError):
        wandb.init(project="p", id="abc123", resume="must")
    with wandb.init(project="p", id="abc123", config={"lr": 1}) as first:
        first.log({"x": 1})
        first.log({"x": 2})
    with pytest.raises(UsageError):
        wandb.init(project="p", id="abc123", resume="never")
    with wandb.init(project="p", id="abc123", resume="allow") as again:
        assert again.resumed and again.step == 2 and again.config["lr"] == 1
        again.log({"x": 3})
    stored = wandb.Api().run("p/abc123")
    assert [r["x"] for r in stored.scan_history()] == [1, 2, 3]
    assert [r["_step"] for r in stored.scan_history()] == [0, 1, 2]


def test_two_writers_of_one_run_keep_both_lineages(registry_url):
    """A resumed run in a second process writes the same record: compare-and-swap keeps both."""
    a = wandb.init(project="p", id="shared1", reinit="create_new")
    b = wandb.init(project="p", id="shared1", reinit="create_new")
    _logged(a, "from-a", "a")
    _logged(b, "from-b", "b")
    a.summary["a"] = 1
    b.summary["b"] = 2
    a.finish()
    b.finish()
    stored = wandb.Api().run("p/shared1")
    assert sorted(x.name for x in stored.logged_artifacts()) == ["from-a:v0", "from-b:v0"]


# -- models and links ------------------------------------------------------------------------------
def test_log_use_link_model(registry_url, tmp_path):
    one = _file(tmp_path / "model.pt", b"w" * 10)
    many = tmp_path / "dir"
    _file(many / "a.bin", b"a")
    _file(many / "b.bin", b"b")
    with wandb.init(entity="acme", project="p") as run:
        assert run.log_model(one, name="single") is None
        run.log_model(many, name="multi", aliases=["best"])
        assert run.use_model("single").endswith("model.pt")
        assert sorted(os.listdir(run.use_model("multi:best"))) == ["a.bin", "b.bin"]
        _logged(run, "data", "x")
        with pytest.raises(AssertionError):
            run.use_model("data")
        linked = run.link_model(many, registered_model_name="Review-Model", name="multi")
        assert linked.qualified_name == "acme/model-registry/Review-Model:v0"
        with pytest.raises(AssertionError):
            run.link_model(many, registered_model_name="x/y")
        again = run.link_model(many, registered_model_name="Review-Model", name="multi")
        assert again.version == "v0"  # unchanged model: the same source, the same link
    assert wandb.Api().artifact("acme/model-registry/Review-Model:latest").type == "model"


def test_link_artifact_unlink_and_linked_artifacts(registry_url):
    with wandb.init(entity="acme", project="p") as run:
        art = wandb.Artifact("m", type="model")
        with art.new_file("w.bin") as f:
            f.write("w")
        linked = run.link_artifact(art, "wandb-registry-model/prod", aliases=["staging"])
    assert art.version == "v0"  # logged first
    assert linked.is_link and not art.is_link
    assert linked.qualified_name == "acme/wandb-registry-model/prod:v0"
    assert sorted(linked.aliases) == ["latest", "staging"]
    assert linked.source_artifact.qualified_name == "acme/p/m:v0"
    assert [a.qualified_name for a in art.linked_artifacts] == [linked.qualified_name]
    assert linked.linked_artifacts == [] and art.source_artifact is art
    with pytest.raises(ValueError):
        art.unlink()  # not a link
    with pytest.raises(ValueError):
        linked.ttl = timedelta(days=1)
    linked.delete()  # a link: only the link goes
    assert not wandb.Api().artifact_exists("acme/wandb-registry-model/prod:v0")
    assert wandb.Api().artifact_exists("acme/p/m:v0") and art.linked_artifacts == []
    relinked = art.link("wandb-registry-model/prod")
    assert relinked.version == "v1" and [a.version for a in art.linked_artifacts] == ["v1"]
    relinked.unlink()
    assert art.linked_artifacts == []


def _link_worker(registry: str, barrier, out) -> None:
    os.environ["ARTIFACTFS_REGISTRY"] = registry
    art = wandb.Api(overrides={"project": "p"}).artifact("src:v0")
    barrier.wait()
    out.put(art.link("portfolio").version)


def test_concurrent_links_of_one_source_give_one_version(registry_url):
    with wandb.init(project="p") as run:
        _logged(run, "src", "payload")
    ctx = mp.get_context("spawn")
    n = 4
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_link_worker, args=(registry_url, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    live = wandb.Api(overrides={"project": "p"}).artifacts("dataset", "portfolio")
    assert len(live) == 1 and set(results) == {live[0].version}


# -- the artifact surface --------------------------------------------------------------------------
def test_artifact_entries_files_and_downloads(registry_url, tmp_path):
    data = tmp_path / "data"
    _file(data / "images" / "a.png", b"A")
    _file(data / "images" / "b.png", b"B")
    _file(data / "labels.csv", b"l")
    with wandb.init(project="p") as run:
        art = wandb.Artifact("ds", type="dataset", use_as="training")
        art.add_dir(data)
        assert art.is_draft() and art.use_as == "training"
        run.log_artifact(art, tags=["raw"])
        single = wandb.Artifact("one", type="dataset")
        single.add_file(data / "labels.csv")
        run.log_artifact(single)
    assert not art.is_draft() and art.tags == ["raw"] and art.updated_at >= art.created_at
    assert art.get_entry("images/a.png").digest == art.get_path("images/a.png").digest
    with pytest.raises(KeyError):
        art.get_entry("nope")
    files = art.files()
    assert [f.name for f in files] == ["images/a.png", "images/b.png", "labels.csv"]
    assert [f.size for f in art.files(names=["labels.csv"])] == [1]
    with files[0].download(tmp_path / "f") as fh:
        assert fh.read() == "A"
    with pytest.raises(ValueError):
        files[0].download(tmp_path / "f")
    files[0].download(tmp_path / "f", exist_ok=True).close()
    root = art.download(tmp_path / "pre", path_prefix="images/")
    assert sorted(os.listdir(root)) == ["images"]
    assert Path(single.file(tmp_path / "single")).read_bytes() == b"l"
    with pytest.raises(ValueError):
        art.file()
    assert art.collection.name == "ds" and art.collection.type == "dataset"
    assert art.qualified_name.endswith("/p/ds:v0")


def test_download_allow_missing_references(registry_url, tmp_path):
    gone = _file(tmp_path / "gone.txt", b"soon gone")
    kept = _file(tmp_path / "kept.txt", b"kept")
    with wandb.init(project="p") as run:
        art = wandb.Artifact("refs", type="dataset")
        art.add_reference(gone.as_uri())
        art.add_reference(kept.as_uri())
        run.log_artifact(art)
    gone.unlink()
    with pytest.raises(OSError):
        art.download(tmp_path / "strict")
    root = art.download(tmp_path / "lenient", allow_missing_references=True)
    assert os.listdir(root) == ["kept.txt"]


def test_new_draft_logs_the_next_version_of_its_source(registry_url, tmp_path):
    with wandb.init(project="p") as run:
        base = wandb.Artifact("ds", type="dataset", description="d", metadata={"k": 1})
        base.add_file(_file(tmp_path / "a.txt", "a"))
        base.add_file(_file(tmp_path / "b.txt", "b"))
        run.log_artifact(base)
    other = wandb.init(project="elsewhere")
    draft = wandb.Api().artifact("p/ds:latest").new_draft()
    assert draft.is_draft() and (draft.description, draft.metadata) == ("d", {"k": 1})
    draft.remove("a.txt")
    draft.add_file(_file(tmp_path / "c.txt", "c"))
    other.log_artifact(draft)
    assert draft.qualified_name.endswith("/p/ds:v1")  # its source collection, not the run's
    assert sorted(draft.manifest.entries) == ["b.txt", "c.txt"]
    assert base.version == "v0" and sorted(base.manifest.entries) == ["a.txt", "b.txt"]


def test_same_path_twice_overwrite_merge_and_policy(tmp_path):
    art = wandb.Artifact("x", type="dataset")
    a = _file(tmp_path / "a.txt", "one")
    art.add_file(a)
    art.add_file(a)  # the same content again: fine
    _file(tmp_path / "b" / "a.txt", "two")
    with pytest.raises(ValueError, match="Cannot add the same path twice"):
        art.add_file(tmp_path / "b" / "a.txt")
    art.add_file(tmp_path / "b" / "a.txt", overwrite=True)
    d = tmp_path / "d"
    _file(d / "a.txt", "three")
    with pytest.raises(ValueError, match="Cannot add the same path twice"):
        art.add_dir(d)
    art.add_dir(d, merge=True)
    assert art.manifest.get("a.txt").size == 5
    with pytest.raises(ValueError):
        art.add_file(a, name="p.txt", policy="sometimes")
    # mutable (default): a staged copy, so changing the original later changes nothing
    art.add_file(a, name="mutable.txt")
    art.add_file(a, name="immutable.txt", policy="immutable")
    a.write_text("changed")
    assert Path(art.manifest.get("mutable.txt").local_path).read_text() == "one"
    assert art.manifest.get("immutable.txt").local_path == str(a)
    with art.new_file("n.txt") as f:
        f.write("n")
    with pytest.raises(ValueError, match="same path"), art.new_file("n.txt") as f:
        f.write("other")  # mode "x" (W&B's default) refuses other content
    with art.new_file("n.txt", mode="w") as f:
        f.write("other")
    assert art.manifest.get("n.txt").size == 5


def test_reference_names_follow_wandb(monkeypatch):
    from artifactfs.cache import references

    def fake(uri, checksum=True, max_objects=None, config=None):
        return [references.ReferenceObject(uri, "", "etag", 3)]

    monkeypatch.setattr(references, "resolve_reference", fake)
    art = wandb.Artifact("r", type="dataset")
    assert art.add_reference("https://h.example/d/q.bin?x=1")[0].path == "q.bin?x=1"
    assert art.add_reference("s3://bucket/k/obj.bin?versionId=1")[0].path == "obj.bin"
    with pytest.raises(ValueError, match="name="):
        art.add_reference("custom://thing/x")
    assert art.add_reference("custom://thing/x", name="x")[0].path == "x"
    with pytest.raises(ValueError, match="URI"):
        art.add_reference("/local/path")


def test_delete_needs_delete_aliases_and_latest_is_managed(registry_url):
    with wandb.init(project="p") as run:
        v0 = _logged(run, "m", "0", aliases=["best"])
        v1 = _logged(run, "m", "1")
    with pytest.raises(ArtifactHasAliasesError):
        v0.delete()
    with pytest.raises(ArtifactHasAliasesError):
        v1.delete()  # latest counts, as in W&B
    fresh = wandb.Api().artifact("p/m:latest")
    fresh.aliases.remove("latest")
    fresh.aliases.append("prod")
    with pytest.warns(UserWarning, match="'latest' is managed"):
        fresh.save()
    assert sorted(fresh.aliases) == ["latest", "prod"]
    old = wandb.Api().artifact("p/m:v0")
    old.aliases = ["replaced"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old.save()
    assert wandb.Api().artifact("p/m:replaced").version == "v0"
    assert not wandb.Api().artifact_exists("p/m:best")
    old.delete(delete_aliases=True)
    assert old.state == "DELETED" and not wandb.Api().artifact_exists("p/m:replaced")


def test_tags_and_ttl_persist(registry_url):
    art = wandb.Artifact("t", type="dataset")
    with art.new_file("f") as f:
        f.write("x")
    with pytest.raises(ArtifactNotLoggedError):
        art.tags = ["a"]
    with pytest.raises(ValueError):
        art.ttl = timedelta(0)
    art.ttl = timedelta(days=3)
    with wandb.init(project="p") as run:
        run.log_artifact(art, tags=["first"])
    fetched = wandb.Api().artifact("p/t:v0")
    assert fetched.ttl == timedelta(days=3) and fetched.tags == ["first"]
    fetched.tags = ["first", "second"]
    fetched.ttl = None
    fetched.save()
    again = wandb.Api().artifact("p/t:v0")
    assert again.ttl is None and again.tags == ["first", "second"]
    assert [a.name for a in wandb.Api().artifacts("dataset", "p/t", tags=["second"])] == ["t:v0"]
    with pytest.raises(ValueError):
        again.tags = ["bad/tag"]


def test_ttl_sweep_deletes_expired_versions(registry_url):
    with wandb.init(project="p") as run:
        short = wandb.Artifact("short", type="dataset")
        with short.new_file("f") as f:
            f.write("x")
        short.ttl = timedelta(hours=1)
        run.log_artifact(short)
        _logged(run, "forever", "y")
    registry = short._resolver.registry
    assert sweep_ttl(registry) == []  # not expired yet
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    listed = sweep_ttl(registry, dry_run=True, now=later)
    assert [x.record.full_name for x in listed] == [short._record.full_name]
    assert wandb.Api().artifact_exists("p/short:v0")
    done = sweep_ttl(registry, now=later)
    assert done[0].deleted and not wandb.Api().artifact_exists("p/short:v0")
    assert wandb.Api().artifact_exists("p/forever:v0")


def test_ttl_sweep_command(registry_url, capsys):
    with wandb.init(project="p") as run:
        art = wandb.Artifact("short", type="dataset")
        with art.new_file("f") as f:
            f.write("x")
        art.ttl = timedelta(seconds=1)
        run.log_artifact(art)
    rec = art._record
    rec.created_at = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    art._resolver.registry.update_version(rec)
    assert cli_main(["ttl-sweep", "--dry-run"]) == 0
    assert "would delete acme/p/short:v0" in capsys.readouterr().out
    assert wandb.Api().artifact_exists("p/short:v0")
    assert cli_main(["ttl-sweep"]) == 0
    assert "deleted acme/p/short:v0" in capsys.readouterr().out
    assert not wandb.Api().artifact_exists("p/short:v0")


# -- the Api: collections, types, runs -------------------------------------------------------------
def test_api_collections_and_types(registry_url):
    with wandb.init(entity="acme", project="p") as run:
        for i in range(3):
            _logged(run, "ds", str(i))
        _logged(run, "other", "o")
        _logged(run, "net", "n", type_="model")
    api = wandb.Api()
    assert sorted(t.name for t in api.artifact_types("acme/p")) == ["dataset", "model"]
    dataset = api.artifact_type("dataset", "p")
    assert sorted(c.name for c in dataset.collections()) == ["ds", "other"]
    with pytest.raises(ArtifactNotFoundError):
        api.artifact_type("nope", "p")
    assert [c.name for c in api.artifact_collections("p", "model")] == ["net"]
    coll = api.artifact_collection("dataset", "acme/p/ds")
    assert [a.version for a in coll.artifacts()] == ["v2", "v1", "v0"]
    assert "latest" in coll.aliases and coll.is_sequence()
    coll.description = "the dataset"
    coll.tags = ["core"]
    coll.save()
    again = api.artifact_collection("dataset", "p/ds")
    assert (again.description, again.tags) == ("the dataset", ["core"])
    assert api.artifact_collection_exists("p/ds", "dataset")
    assert not api.artifact_collection_exists("p/ds", "model")
    assert not api.artifact_collection_exists("p/none", "dataset")

    again.name = "ds-renamed"
    again.save()
    assert [a.version for a in api.artifacts("dataset", "p/ds-renamed")] == ["v2", "v1", "v0"]
    assert api.artifact("p/ds:v1").qualified_name == "acme/p/ds-renamed:v1"  # old name follows
    assert sorted(c.name for c in api.artifact_collections("p", "dataset")) == [
        "ds-renamed",
        "other",
    ]
    with wandb.init(entity="acme", project="p") as run, pytest.raises(InvalidNameError):
        _logged(run, "ds", "new")  # renamed: log to the new name
    taken = api.artifact_collection("dataset", "p/other")
    taken.name = "ds-renamed"
    with pytest.raises(InvalidNameError):
        taken.save()  # the name is taken

    other = api.artifact_collection("dataset", "p/other")
    other.delete()
    assert not api.artifact_collection_exists("p/other", "dataset")
    with wandb.init(entity="acme", project="p") as run:
        revived = _logged(run, "other", "back")
    assert revived.version == "v1"  # numbers are never reused
    assert api.artifact_collection_exists("p/other", "dataset")


def test_api_runs_filters_and_order(registry_url):
    for job, lr in (("train", 0.1), ("train", 0.01), ("eval", 0.5)):
        with wandb.init(project="p", job_type=job, config={"lr": lr}, tags=[job]) as run:
            run.log({"loss": lr})
    failing = wandb.init(project="p", job_type="train", reinit="create_new")
    failing.finish(exit_code=1)
    api = wandb.Api()
    assert len(api.runs("p")) == 4
    assert [
        r.config.get("lr") for r in api.runs("p", {"jobType": "train", "state": "finished"})
    ] == [
        0.1,
        0.01,
    ]
    assert [r.state for r in api.runs("p", {"state": "failed"})] == ["failed"]
    assert len(api.runs("p", {"config.lr": {"$gte": 0.1}})) == 2
    assert len(api.runs("p", {"$or": [{"jobType": "eval"}, {"tags": "train"}]})) == 3
    assert len(api.runs("p", {"summary_metrics.loss": {"$lt": 0.05}})) == 1
    assert [r.config.get("lr") for r in api.runs("p", order="-summary_metrics.loss")][:2] == [
        0.5,
        0.1,
    ]
    with pytest.raises(RunNotFoundError):
        api.run("p/missing")
    key = keys.run_key("acme", "p", failing.id)
    assert key.endswith(f"{failing.id}.json")


def test_provenance_sources_are_not_links_and_live_runs_are_running(registry_url):
    """A draft commit records its producer in `source`; that version is no link. A run in
    progress reads as running; records written without a state (draft commits) as finished."""
    run = wandb.init(project="p")
    assert wandb.Api().run(f"p/{run.id}").state == "running"
    art = _logged(run, "d", "x")
    registry = art._resolver.registry
    rec = registry.commit(
        "acme", "p", "d", "dataset", registry.manifest(art._record), source={"producer": "mount"}
    )
    assert rec.version == 0  # unchanged contents: the same version
    rec = registry.commit(
        "acme",
        "p",
        "d2",
        "dataset",
        registry.manifest(art._record),
        source={"producer": "mount", "draft": "acme/p/d2"},
    )
    drafted = wandb.Api().artifact("p/d2:v0")
    assert not drafted.is_link and drafted.source_artifact is drafted
    assert drafted.source_qualified_name == "acme/p/d2:v0"
    drafted.delete(delete_aliases=True)  # a real delete, not an unlink
    assert not wandb.Api().artifact_exists("p/d2:v0")
