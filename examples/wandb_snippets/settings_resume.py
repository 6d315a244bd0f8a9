"""Source: docs.wandb.ai — Resume a run ("Enable runs to resume automatically": generate the run
ID with `wandb.util.generate_id()`, `wandb.init(id=run_id, resume="allow")`) and Configure
experiments / environment ("`wandb.init(settings=wandb.Settings(...))`", `wandb.termlog`)."""

import wandb

# store this id to use it later when resuming
run_id = wandb.util.generate_id()
wandb.termlog(f"Starting run {run_id}")

run = wandb.init(
    project="resume-project",
    id=run_id,
    resume="allow",
    settings=wandb.Settings(run_name="first-attempt", silent=True),
)
run.log({"epoch": 0, "loss": 1.0})
run.finish()

# ... the job is pre-empted and restarted with the same id
run = wandb.init(project="resume-project", id=run_id, resume="allow")
run.log({"epoch": 1, "loss": 0.5})
resumed = run.resumed
run.finish()

# -- checks: what W&B does
assert len(run_id) == 8 and run_id.isalnum()
assert resumed
api_run = wandb.Api().run(f"resume-project/{run_id}")
assert api_run.name == "first-attempt"
assert [r["epoch"] for r in api_run.history(pandas=False)] == [0, 1]
