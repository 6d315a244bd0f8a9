"""Source: Lightning's `lightning/pytorch/loggers/wandb.py` (2.6): the W&B calls `WandbLogger`
makes — `experiment` (imports `wandb.sdk.lib.RunDisabled` and `wandb.wandb_run.Run`, reuses
`wandb.run`, else `wandb.init(**self._wandb_init)`, then `define_metric("trainer/global_step")`
and `define_metric("*", step_metric="trainer/global_step", step_sync=True)`),
`log_hyperparams` (`config.update(params, allow_val_change=True)`), `log_metrics`, `log_text`
(`wandb.Table(columns=, data=, dataframe=)`), `__getstate__` (`wandb.require("service")`)."""

import wandb
from wandb.sdk.lib import RunDisabled
from wandb.wandb_run import Run

_wandb_init = {
    "name": None,
    "project": "lightning_logs",
    "dir": None,
    "id": None,
    "resume": "allow",
    "anonymous": None,
}

wandb.require("service")
if wandb.run is not None:
    experiment = wandb.run
elif None is not None and hasattr(wandb, "_attach"):
    experiment = wandb._attach(None)
else:
    experiment = wandb.init(**_wandb_init)
    if isinstance(experiment, (Run, RunDisabled)) and getattr(experiment, "define_metric", None):
        experiment.define_metric("trainer/global_step")
        experiment.define_metric("*", step_metric="trainer/global_step", step_sync=True)

# log_hyperparams
experiment.config.update({"lr": 0.01, "batch_size": 32}, allow_val_change=True)
# log_metrics (step given: trainer/global_step rides along)
for step in range(3):
    experiment.log(dict({"train_loss": 1.0 / (step + 1)}, **{"trainer/global_step": step}))
experiment.log({"val_loss": 0.4})
# log_text
metrics = {"samples": wandb.Table(columns=["input", "output"], data=[["2+2", "4"]], dataframe=None)}
experiment.log(dict(metrics, **{"trainer/global_step": 3}))
run_id = experiment.id
wandb.finish()

# -- checks: what W&B does
api_run = wandb.Api().run(f"lightning_logs/{run_id}")
assert api_run.config["lr"] == 0.01
rows = api_run.history(pandas=False)
assert rows[3]["trainer/global_step"] == 2  # step_sync filled it into the val_loss row
assert api_run.summary["samples"]["_type"] == "table-file"
assert not hasattr(wandb, "_attach")
