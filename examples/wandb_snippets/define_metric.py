"""Source: docs.wandb.ai — Customize log axes ("Customize log axes": `wandb.define_metric("custom_step")`,
`wandb.define_metric("validation_loss", step_metric="custom_step")`, globs
`define_metric("train/*", step_metric="train/step")`) and Log summary metrics
(`run.define_metric("loss", summary="min")`, `summary="max"`)."""

import wandb

run = wandb.init(project="define-metric")
# define our custom x axis metric
run.define_metric("custom_step")
# define which metrics will be plotted against it
run.define_metric("validation_loss", step_metric="custom_step")
run.define_metric("train/*", step_metric="train/step")
run.define_metric("loss", summary="min")
run.define_metric("acc", summary="max")

for i in range(10):
    log_dict = {
        "train_loss": 1 / (i + 1),
        "custom_step": i**2,
        "validation_loss": 1 / (i + 1),
    }
    run.log(log_dict)
    run.log({"train/step": i, "train/loss": 1 / (i + 1)})
    run.log({"loss": (10 - i) / 10, "acc": i / 10})
run_id = run.id
run.finish()

# -- checks: what W&B does
api_run = wandb.Api().run(f"define-metric/{run_id}")
assert api_run.summary["loss"] == {"min": 0.1}
assert api_run.summary["acc"] == {"max": 0.9}
assert api_run.summary["validation_loss"] == 0.1  # no summary option: the last value
rows = api_run.history(pandas=False, samples=1000)
assert all(
    r["custom_step"] == r["_step"] // 3 * (r["_step"] // 3) for r in rows if "validation_loss" in r
)
