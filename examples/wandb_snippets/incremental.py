"""Source: docs.wandb.ai — Create an artifact version ("Incremental artifacts": log a new version
that keeps the files of the previous one and adds or replaces some, here with the constructor
argument `incremental=True` that older docs and many repos use)."""

import os

import wandb

# -- setup: a first version of the dataset, as the docs assume
os.makedirs("shards", exist_ok=True)
for i in range(3):
    with open(f"shards/part-{i}.txt", "w") as f:
        f.write(f"shard {i}\n")
with wandb.init(project="incremental", job_type="ingest") as run:
    artifact = wandb.Artifact("images", type="dataset")
    artifact.add_dir("shards")
    run.log_artifact(artifact)

# -- the pattern: only the new shard is added
with open("part-3.txt", "w") as f:
    f.write("shard 3\n")
with wandb.init(project="incremental", job_type="ingest") as run:
    artifact = wandb.Artifact("images", type="dataset", incremental=True)
    artifact.add_file("part-3.txt")
    run.log_artifact(artifact)

# -- checks: what W&B does (the new version holds the old files and the new one)
latest = wandb.Api().artifact("incremental/images:latest")
assert latest.version == "v1"
assert sorted(e for e in latest.manifest.entries) == [
    "part-0.txt",
    "part-1.txt",
    "part-2.txt",
    "part-3.txt",
]
