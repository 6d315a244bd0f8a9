"""Source: https://docs.wandb.ai/models/artifacts/artifacts-walkthrough (the whole tutorial)."""

import os

import artifactfs as wandb

# -- setup: the local file the tutorial logs
with open("dataset.h5", "wb") as f:
    f.write(os.urandom(4096))

# -- the tutorial
wandb.login()

with wandb.init(project="artifacts-example", job_type="upload-dataset") as run:
    artifact = wandb.Artifact(name="bicycle-dataset", type="dataset")
    artifact.add_file(local_path="dataset.h5")
    run.log_artifact(artifact)

with wandb.init(project="artifacts-example", job_type="training") as run:
    artifact = run.use_artifact("bicycle-dataset:latest")
    artifact_dir = artifact.download()

# -- checks
assert (
    open(os.path.join(artifact_dir, "dataset.h5"), "rb").read() == open("dataset.h5", "rb").read()
)
assert artifact.version == "v0" and "latest" in artifact.aliases
assert [r.job_type for r in artifact.used_by()] == ["training"]
assert artifact.logged_by().job_type == "upload-dataset"
assert wandb.run is None
