"""W&B's behaviour where ours used to differ silently (issue 22), each checked against what
wandb's SDK does (its source, and wandb 0.31 run offline): Tables and `run.log` of one,
`define_metric`, non-JSON values in `run.log`, incremental artifacts, aliases with spaces (on
every backend and through the mount), `checkout()`'s root, changed references, `Api.artifact`
of a missing name, `Artifact.url`, entries' `skip_cache`, tracking-only reference digests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mountutil import mounted

import artifactfs as wandb
from artifactfs.errors import CommError, InvalidNameError
from artifactfs.resolver import keys


@pytest.fixture(autouse=True)
def _no_current_run():
    yield
    wandb.finish()


def _file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- Tables -----------------------------------------------------------------------------------------
def test_table_methods_as_in_wandb() -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    table = wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])
    table.add_column("c", [0.5, np.float64(1.5)])
    assert table.columns == ["a", "b", "c"]
    assert table.get_column("c") == [0.5, 1.5] and type(table.get_column("c")[1]) is float
    assert list(table.get_column("a", convert_to="numpy")) == [1, 2]
    assert list(table.iterrows()) == [(0, [1, "x", 0.5]), (1, [2, "y", 1.5])]
    assert table.get_index() == [0, 1]
    with pytest.raises(ValueError, match="new string"):
        table.add_column("a", [3, 4])
    with pytest.raises(ValueError, match="expected 2"):
        table.add_column("d", [1])
    df = table.get_dataframe()
    assert list(df.columns) == ["a", "b", "c"] and df["a"].tolist() == [1, 2]
    again = wandb.Table(dataframe=pd.DataFrame({"n": np.arange(3), "s": list("pqr")}))
    assert again.columns == ["n", "s"] and again.data == [[0, "p"], [1, "q"], [2, "r"]]
    assert type(again.data[0][0]) is int
    empty = wandb.Table()
    empty.add_column("first", [1, 2, 3])
    assert empty.data == [[1], [2], [3]]


def test_run_log_of_a_table_makes_a_run_table_artifact(tmp_path: Path) -> None:
    run = wandb.init(project="tables")
    table = wandb.Table(columns=["x", "y"], data=[[1, 2.0], [2, 4.0]])
    run.log({"preds": table, "val/preds": table})
    ref = run.summary["preds"]
    assert ref["_type"] == "table-file" and ref["ncols"] == 2 and ref["nrows"] == 2
    assert ref["artifact_path"] == f"artifact://acme/tables/run-{run.id}-preds:v0/preds.table.json"
    assert ref["_latest_artifact_path"].endswith(f"run-{run.id}-preds:latest/preds.table.json")
    assert run.summary["val/preds"]["path"] == "val/preds.table.json"
    run.finish()
    art = wandb.Api().artifact(f"acme/tables/run-{run.id}-preds:latest")
    assert art.type == "run_table"
    assert art.get("preds") == table
    # the reference opens with fsspec as it is stored
    fsspec = pytest.importorskip("fsspec")
    with fsspec.open(ref["artifact_path"], "rb") as f:
        assert len(f.read()) == ref["size"]
    history = wandb.Api().run(f"acme/tables/{run.id}").history(pandas=False)
    assert history[0]["preds"]["_type"] == "table-file"


def test_run_log_refuses_what_wandb_refuses_and_converts_what_it_converts() -> None:
    import datetime
    import decimal

    run = wandb.init(project="json")

    class Opaque:
        pass

    with pytest.raises(TypeError, match="Object of type Opaque is not JSON serializable"):
        run.log({"o": Opaque(), "fine": 1})
    assert "fine" not in run.summary  # the whole call is refused, as W&B's
    run.log(
        {
            "set": {1, 2},
            "dt": datetime.datetime(2020, 1, 1),
            "dec": decimal.Decimal("1.5"),
            "bytes": b"ab",
            "cplx": 1j,
            "tup": (1, 2),
        }
    )
    # wandb 0.31 offline stores exactly these
    assert run.summary["set"] == [1, 2] and run.summary["dt"] == "2020-01-01T00:00:00"
    assert run.summary["dec"] == "1.5" and run.summary["bytes"] == "ab"
    assert run.summary["cplx"] == "1j" and run.summary["tup"] == [1, 2]


# -- define_metric ----------------------------------------------------------------------------------
def test_define_metric_summary_and_step_sync() -> None:
    run = wandb.init(project="metrics")
    run.define_metric("acc", summary="max")
    run.define_metric("x", summary="min,mean,last,first")
    run.define_metric("h", summary="none")
    run.define_metric("ep")
    metric = wandb.define_metric("val/*", step_metric="ep")
    assert metric.step_metric == "ep" and metric.step_sync is True
    for i in range(3):
        run.log({"acc": i * 0.1, "x": i, "h": i, "ep": i})
        run.log({"val/a": i})
    # the same summary wandb 0.31 computes offline for these calls
    assert run.summary["acc"] == {"max": pytest.approx(0.2)}
    assert run.summary["x"] == {"last": 2, "first": 0, "min": 0, "mean": 1}
    assert "h" not in run.summary and run.summary["val/a"] == 2 and run.summary["ep"] == 2
    run.finish()
    rows = wandb.Api().run(f"acme/metrics/{run.id}").history(pandas=False)
    val_rows = [r for r in rows if "val/a" in r]
    assert [r["ep"] for r in val_rows] == [0, 1, 2]  # step_sync filled the step metric in
    with pytest.raises(ValueError, match="invalid summary"):
        wandb.init(project="metrics2").define_metric("y", summary="median")


# -- artifacts --------------------------------------------------------------------------------------
def test_incremental_artifact_keeps_latest_files(registry_url, tmp_path: Path) -> None:
    run = wandb.init(project="inc")
    first = wandb.Artifact("ds", "dataset")
    first.add_file(str(_file(tmp_path / "a.txt", "a")))
    first.add_file(str(_file(tmp_path / "b.txt", "b")))
    run.log_artifact(first)
    more = wandb.Artifact("ds", "dataset", incremental=True)
    more.add_file(str(_file(tmp_path / "new" / "b.txt", "B")))
    more.add_file(str(_file(tmp_path / "c.txt", "c")))
    logged = run.log_artifact(more)
    assert logged.version == "v1"
    assert sorted(e.path for e in logged.manifest) == ["a.txt", "b.txt", "c.txt"]
    root = Path(logged.download(str(tmp_path / "dl")))
    assert (root / "b.txt").read_text() == "B" and (root / "a.txt").read_text() == "a"


def test_aliases_with_spaces_on_every_backend_and_in_the_mount(registry_url, tmp_path) -> None:
    run = wandb.init(project="al")
    art = wandb.Artifact("model", "model")
    art.add_file(str(_file(tmp_path / "w.pt", "weights")))
    logged = run.log_artifact(art, aliases=["epoch 1", "best ü"])
    assert set(logged.aliases) == {"latest", "epoch 1", "best ü"}
    assert wandb.Api().artifact("acme/al/model:epoch 1").version == "v0"
    store = logged._resolver_or_raise().registry.store
    store_keys = list(store.list(keys.aliases_prefix("acme", "al", "model")))
    assert any(k.endswith("epoch~201.json") for k in store_keys), store_keys
    assert not any(" " in k for k in store_keys)
    for bad in ("a/b", "a:b", "tab\there", "v3"):
        with pytest.raises(InvalidNameError):
            logged.aliases.append(bad)
            logged.save()
        logged.aliases.remove(bad)
    run.finish()
    with mounted(tmp_path / "mnt", registry=registry_url) as m:
        folder = m.path / "acme" / "al"
        assert "model:epoch 1" in os.listdir(folder)
        assert (folder / "model:epoch 1" / "w.pt").read_text() == "weights"


def test_alias_keys_of_plain_aliases_are_unchanged() -> None:
    assert keys.alias_key("e", "p", "n", "best-1.0_x").endswith("/aliases/best-1.0_x.json")
    for alias in ("epoch 1", "a~b", "ü", "x%20y"):
        assert keys.decode_alias(keys.encode_alias(alias)) == alias


def test_checkout_default_root_has_no_version(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = wandb.init(project="co")
    art = wandb.Artifact("ds", "dataset")
    art.add_file(str(_file(tmp_path / "src" / "a.txt", "a")))
    logged = run.log_artifact(art)
    assert Path(logged.checkout()) == (tmp_path / "artifacts" / "ds").absolute()
    assert Path(logged.download()).name == "ds:v0"


def test_changed_local_reference_is_a_value_error(tmp_path: Path) -> None:
    run = wandb.init(project="refs")
    target = _file(tmp_path / "ext" / "data.bin", "original")
    art = wandb.Artifact("refs", "dataset")
    art.add_reference(target.as_uri())
    logged = run.log_artifact(art)
    target.write_text("changed and longer")
    with pytest.raises(ValueError, match="changed"):
        logged.download(str(tmp_path / "out"))


def test_missing_artifact_is_a_comm_error() -> None:
    with pytest.raises(CommError):
        wandb.Api().artifact("acme/nothing/here:latest")
    with pytest.raises(LookupError):  # and still what Python code catches
        wandb.Api().artifact("acme/nothing/here:latest")


def test_url_skip_cache_and_tracking_digest(tmp_path: Path) -> None:
    run = wandb.init(project="misc")
    art = wandb.Artifact("m", "dataset")
    assert art.url == ""
    entry = art.add_file(str(_file(tmp_path / "a.txt", "a")), skip_cache=True)
    assert entry.skip_cache is True
    (tracked,) = art.add_reference("nfs://server/share/x.bin", name="x.bin")
    assert tracked.digest == "nfs://server/share/x.bin"  # W&B's TrackingHandler digest
    logged = run.log_artifact(art)
    assert logged.url == "artifact://acme/misc/m:v0"
    assert "skip_cache" not in logged.manifest.to_json()["contents"]["a.txt"]
    out = logged.get_entry("a.txt").download(str(tmp_path / "direct"), skip_cache=True)
    assert Path(out).read_text() == "a"


# -- what is not implemented says so ----------------------------------------------------------------
def test_unimplemented_w_and_b_names_raise_naming_the_guide(tmp_path: Path) -> None:
    from artifactfs.errors import NotSupportedAttributeError

    run = wandb.init(project="none")
    assert run.url is None and run.sweep_id is None
    art = wandb.Artifact("n", "dataset")
    art.add_file(str(_file(tmp_path / "a.txt", "a")))
    logged = run.log_artifact(art)
    assert logged.file_count == 1
    api = wandb.Api(timeout=30, api_key="ignored")
    public_run = api.run(f"acme/none/{run.id}")
    collection = api.artifact_collection("dataset", "acme/none/n")
    for obj, name in (
        (run, "upsert_artifact"),
        (run, "finish_artifact"),
        (logged, "history_step"),
        (logged, "distributed_id"),
        (logged, "linked_at"),
        (api, "registries"),
        (api, "create_registry"),
        (api, "sweep"),
        (public_run, "update"),
        (public_run, "files"),
        (collection, "change_type"),
    ):
        with pytest.raises(AttributeError, match=rf"{name}") as info:
            getattr(obj, name)
        if obj is not collection:
            assert isinstance(info.value, NotSupportedAttributeError)
            assert "MIGRATING_FROM_WANDB" in str(info.value)
        assert not hasattr(obj, name)
