"""Real training integrations log checkpoints through `install_as_wandb()`; the mount shows them.

Each test mounts the test's embedded registry for real, then runs one script of
tests/integrations/ in a subprocess (Lightning's WandbLogger, Transformers' Trainer with
report_to="wandb", Ultralytics-style callbacks): it trains, logs through its framework's own W&B
code, and loads a checkpoint back through the mount with the framework itself, comparing it
with the file training wrote (the frameworks are imported once, in that process). The test then
checks what the registry holds through the public Api. The frameworks come from the
`integrations` extra; without it these tests skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mountutil import mounted

pytestmark = [pytest.mark.fuse, pytest.mark.slow]

SCRIPTS = Path(__file__).resolve().parent / "integrations"


def _train(script: str, cwd: Path, *args: str) -> str:
    """Run the training script; return the W&B run id it printed (it must have loaded a
    checkpoint through the mount: "LOADED")."""
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
    assert lines and "\nLOADED " in proc.stdout, proc.stdout
    return lines[-1]


def test_lightning_wandblogger_log_model_all(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    import artifactfs

    with mounted(tmp_path / "mnt") as m:
        run_id = _train("lightning_train.py", tmp_path / "work", str(m.path))
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


def test_hf_trainer_report_to_wandb_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    import artifactfs

    with mounted(tmp_path / "mnt") as m:
        run_id = _train("hf_train.py", tmp_path / "work", str(m.path))
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


def test_ultralytics_style_callbacks(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import artifactfs

    save_dir = tmp_path / "runs" / "exp"
    with mounted(tmp_path / "mnt") as m:
        run_id = _train("yolo_callbacks.py", tmp_path / "work", str(save_dir), str(m.path))
        assert f"run_{run_id}_model:epoch 1" in os.listdir(m.path / "acme" / "yolo")
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
