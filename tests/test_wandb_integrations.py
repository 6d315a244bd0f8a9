"""Real training integrations log checkpoints through `install_as_wandb()`; the mount shows them.

Each test runs one script of tests/integrations/ in a subprocess (Lightning's WandbLogger,
Transformers' Trainer with report_to="wandb", Ultralytics-style callbacks), against the test's
embedded registry, then mounts that registry for real and loads a checkpoint through the mount
with the framework itself. The frameworks come from the `integrations` extra; without it these
tests skip.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mountutil import mounted

pytestmark = [pytest.mark.fuse, pytest.mark.slow]

SCRIPTS = Path(__file__).resolve().parent / "integrations"


def _train(script: str, cwd: Path, *args: str) -> str:
    """Run the training script; return the W&B run id it printed."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    lines = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("RUN ")]
    assert lines, proc.stdout
    return lines[-1]


def test_lightning_wandblogger_log_model_all(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    torch = pytest.importorskip("torch")
    import artifactfs

    run_id = _train("lightning_train.py", tmp_path / "work")
    api = artifactfs.Api()
    versions = api.artifacts("model", f"lightning/model-{run_id}")
    # one checkpoint per epoch (log_model="all"), Lightning's aliases and metadata
    assert len(versions) == 2
    best = api.artifact(f"lightning/model-{run_id}:best")
    assert "latest" in best.aliases
    assert best.metadata["original_filename"].endswith(".ckpt")
    assert "ModelCheckpoint" in best.metadata
    assert [f.name for f in best.files()] == ["model.ckpt"]
    run = api.run(f"acme/lightning/{run_id}")
    assert "trainer/global_step" in run.summary and "val_loss" in run.summary

    spec = importlib.util.spec_from_file_location("lightning_train", SCRIPTS / "lightning_train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with mounted(tmp_path / "mnt") as m:
        ckpt = m.path / "acme" / "lightning" / f"model-{run_id}:best" / "model.ckpt"
        model = module.TinyRegressor.load_from_checkpoint(str(ckpt))
        stored = torch.load(best.download(str(tmp_path / "dl")) + "/model.ckpt", weights_only=False)
    assert torch.equal(model.layer.weight, stored["state_dict"]["layer.weight"])
    assert model.hparams.width == 4


def test_hf_trainer_report_to_wandb_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    torch = pytest.importorskip("torch")
    import artifactfs

    run_id = _train("hf_train.py", tmp_path / "work")
    api = artifactfs.Api()
    name = f"hf/model-{run_id}"
    aliases = {a for v in api.artifacts("model", name) for a in v.aliases}
    # WANDB_LOG_MODEL=checkpoint: the base model, one version per saved checkpoint, the final
    assert {"base_model", "checkpoint_global_step_2", "epoch_1.0", "final_model"} <= aliases
    ckpt = api.artifact(f"{name}:checkpoint_global_step_4")
    assert {"config.json", "model.safetensors", "trainer_state.json"} <= {
        f.name for f in ckpt.files()
    }
    assert ckpt.metadata["model/num_parameters"] > 0

    from transformers import BertForSequenceClassification

    local = tmp_path / "work" / "out" / "checkpoint-4"
    with mounted(tmp_path / "mnt") as m:
        folder = m.path / "acme" / "hf" / f"model-{run_id}:checkpoint_global_step_4"
        model = BertForSequenceClassification.from_pretrained(str(folder))
    expected = BertForSequenceClassification.from_pretrained(str(local))
    for (k, v), (k2, v2) in zip(
        model.state_dict().items(), expected.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2)


def test_ultralytics_style_callbacks(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import artifactfs

    save_dir = tmp_path / "runs" / "exp"
    run_id = _train("yolo_callbacks.py", tmp_path / "work", str(save_dir))
    api = artifactfs.Api()
    name = f"yolo/run_{run_id}_model"
    by_alias = {a: v for v in api.artifacts("model", name) for a in v.aliases}
    # YOLOv5's aliases, spaces included (W&B forbids only '/' and ':'); "" names nothing
    assert {"latest", "last", "epoch 0", "epoch 1", "best"} <= set(by_alias)
    assert "" not in by_alias
    run = api.run(f"acme/yolo/{run_id}")
    # define_metric(summary="max") keeps the best value, as W&B's summary does
    assert run.summary["metrics/mAP50(B)"] == {"max": pytest.approx(0.5)}
    assert run.config["imgsz"] == 32

    with mounted(tmp_path / "mnt") as m:
        folder = m.path / "acme" / "yolo"
        assert f"run_{run_id}_model:epoch 1" in os.listdir(folder)
        last = torch.load(folder / f"run_{run_id}_model:epoch 1" / "last.pt", weights_only=True)
        best = torch.load(folder / f"run_{run_id}_model:best" / "best.pt", weights_only=True)
    assert last["epoch"] == 1
    local = torch.load(save_dir / "best.pt", weights_only=True)
    for key, value in local["model"].items():
        assert torch.equal(best["model"][key], value)
