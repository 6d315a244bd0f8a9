"""Source: Transformers' `integrations/integration_utils.py` `WandbCallback` (5.x): the W&B calls
of `setup` (`from wandb.sdk.lib.config_util import ConfigError as WandbConfigError`,
`wandb.init(project=os.getenv("WANDB_PROJECT", "huggingface"), name=...)`,
`config.update(combined_dict, allow_val_change=True)`, `define_metric("train/global_step")`,
`define_metric("*", step_metric="train/global_step", step_sync=True)`,
`run._label(code="transformers_trainer")`, `config["model/num_parameters"] = ...`, the
`base_model` artifact written with `new_file(..., mode="wb")`), `on_log`, `on_save` with
`WANDB_LOG_MODEL=checkpoint` and `on_train_end`'s `final_model`."""

import numbers
import os
import tempfile
from pathlib import Path

import wandb
from wandb.sdk.lib.config_util import ConfigError as WandbConfigError

# -- setup: what the Trainer would have on disk and in memory
os.makedirs("out/checkpoint-10", exist_ok=True)
Path("out/checkpoint-10/model.safetensors").write_bytes(b"\x00" * 64)
Path("out/checkpoint-10/config.json").write_text('{"hidden_size": 16}')
combined_dict = {"hidden_size": 16, "learning_rate": 5e-05, "output_dir": "out"}

# setup()
_wandb = wandb
if _wandb.run is None:
    _wandb.init(project=os.getenv("WANDB_PROJECT", "huggingface"), name="bert-tiny")
_wandb.config.update(combined_dict or {}, allow_val_change=True)
if getattr(_wandb, "define_metric", None):
    _wandb.define_metric("train/global_step")
    _wandb.define_metric("*", step_metric="train/global_step", step_sync=True)
_wandb.run._label(code="transformers_trainer")
try:
    _wandb.config["model/num_parameters"] = 12345
except AttributeError:
    pass
except WandbConfigError:
    pass
try:
    _wandb.config["hidden_size"] = 32  # a changed value: W&B's ConfigError
    changed = True
except WandbConfigError:
    changed = False
with tempfile.TemporaryDirectory() as temp_dir:
    model_name = f"model-{_wandb.run.id}"
    model_artifact = _wandb.Artifact(
        name=model_name,
        type="model",
        metadata={
            "num_parameters": _wandb.config.get("model/num_parameters"),
            "initial_model": True,
        },
    )
    Path(temp_dir, "model_architecture.txt").write_text("BertForSequenceClassification(...)")
    for f in Path(temp_dir).glob("*"):
        if f.is_file():
            with model_artifact.new_file(f.name, mode="wb") as fa:
                fa.write(f.read_bytes())
    _wandb.run.log_artifact(model_artifact, aliases=["base_model"])

# on_log()
logs = {"loss": 0.69, "learning_rate": 5e-05, "epoch": 1.0}
_wandb.log({**{f"train/{k}": v for k, v in logs.items()}, "train/global_step": 10})
_wandb.run.summary["train_runtime"] = 1.5

# on_save() with WANDB_LOG_MODEL=checkpoint
checkpoint_metadata = {
    k: v
    for k, v in dict(_wandb.summary).items()
    if isinstance(v, numbers.Number) and not k.startswith("_")
}
checkpoint_metadata["model/num_parameters"] = _wandb.config.get("model/num_parameters")
artifact = _wandb.Artifact(
    name=f"model-{_wandb.run.id}", type="model", metadata=checkpoint_metadata
)
artifact.add_dir(os.path.join("out", "checkpoint-10"))
_wandb.log_artifact(artifact, aliases=[f"epoch_{round(1.0, 2)}", "checkpoint_global_step_10"])
run_id = _wandb.run.id
_wandb.finish()

# -- checks: what W&B does
assert not changed
api = wandb.Api()
project = os.getenv("WANDB_PROJECT", "huggingface")
ckpt = api.artifact(f"{project}/model-{run_id}:checkpoint_global_step_10")
assert "epoch_1.0" in ckpt.aliases and ckpt.metadata["train_runtime"] == 1.5
assert sorted(f.name for f in ckpt.files()) == ["config.json", "model.safetensors"]
assert api.artifact(f"{project}/model-{run_id}:base_model").metadata["initial_model"] is True
assert api.run(f"{project}/{run_id}").config["model/num_parameters"] == 12345
