"""Source: https://docs.wandb.ai/models/artifacts/track-external-files ("Track artifacts outside
of W&B": a filesystem reference with `file://`, and downloading it)."""

import os

import artifactfs as wandb

# -- setup: a dataset on a "mounted" filesystem
root = os.path.abspath("mount/datasets/mnist")
os.makedirs(root, exist_ok=True)
for i in range(3):
    with open(os.path.join(root, f"{i}.png"), "wb") as f:
        f.write(bytes([i]) * 10)

# -- the docs
run = wandb.init()
artifact = wandb.Artifact("mnist", type="dataset")
artifact.add_reference(f"file://{root}/")
run.log_artifact(artifact)
run.finish()

with wandb.init() as run:
    artifact = run.use_artifact("mnist:latest")
    artifact_dir = artifact.download()

# -- checks
assert sorted(os.listdir(artifact_dir)) == ["0.png", "1.png", "2.png"]
assert all(e.ref.startswith("file://") for e in artifact.manifest)
