"""Source: https://docs.wandb.ai/models/track/public-api-guide ("Export run data", "Querying
multiple runs": a CSV of name, config and summary per run, `api.runs(..., filters=)`), and the
`get_wandb_data()` helper of a public Hugging Face space that filters runs by `jobType`."""

import pandas as pd

import artifactfs as wandb

# -- setup: runs to query
for job_type, lr in (("train", 0.1), ("train", 0.01), ("eval", 0.0)):
    with wandb.init(entity="entity", project="project", job_type=job_type, config={"lr": lr}) as r:
        for step in range(10):
            r.log({"loss": lr + 1 / (step + 1)})

# -- the docs: export run data
api = wandb.Api()
run = api.run(f"entity/project/{r.id}")
history = run.history()
config, summary = run.config, run.summary

# -- the docs: querying multiple runs
entity, project = "entity", "project"
runs = api.runs(entity + "/" + project)

summary_list, config_list, name_list = [], [], []
for run in runs:
    # .summary contains output keys/values for
    # metrics such as accuracy.
    #  We call ._json_dict to omit large files
    summary_list.append(run.summary._json_dict)

    # .config contains the hyperparameters.
    #  We remove special values that start with _.
    config_list.append({k: v for k, v in run.config.items() if not k.startswith("_")})

    # .name is the human-readable name of the run.
    name_list.append(run.name)

runs_df = pd.DataFrame({"summary": summary_list, "config": config_list, "name": name_list})
runs_df.to_csv("project.csv")

# -- the Hugging Face space's helper
filter_dict = {"jobType": "train"}
train_runs = api.runs(f"{entity}/{project}", filters=filter_dict)

# -- checks
assert isinstance(history, pd.DataFrame) and len(history) == 10 and "loss" in history
assert config == {"lr": 0.0} and summary["loss"] == 0.1
assert len(runs_df) == 3 and sorted(runs_df["config"].map(lambda c: c["lr"])) == [0.0, 0.01, 0.1]
assert sorted(run.config["lr"] for run in train_runs) == [0.01, 0.1]
assert [x.job_type for x in api.runs("entity/project", filters={"state": "finished"})] == [
    "train",
    "train",
    "eval",
]
assert len(api.runs("entity/project", filters={"config.lr": {"$gt": 0.05}})) == 1
