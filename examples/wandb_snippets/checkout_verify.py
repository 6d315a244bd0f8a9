"""Source: docs.wandb.ai — Artifact reference (`Artifact.checkout(root=None)`: "Replace the
specified root directory with the contents of the artifact", default root `./artifacts/<name>`;
`Artifact.verify(root=None)`: "Verify that the contents of an artifact match the manifest")."""

import os

import wandb

# -- setup: a logged artifact
with open("config.yaml", "w") as f:
    f.write("lr: 0.1\n")
with wandb.init(project="checkout") as run:
    artifact = wandb.Artifact("configs", type="config")
    artifact.add_file("config.yaml")
    run.log_artifact(artifact)

# -- the pattern
artifact = wandb.Api().artifact("checkout/configs:latest")
root = artifact.checkout()
with open(os.path.join(root, "stray.txt"), "w") as f:
    f.write("not part of the artifact")
artifact.checkout(root)  # deletes what is not in the artifact
artifact.verify(root)
downloaded = artifact.download()

# -- checks: what W&B does
assert os.path.relpath(root) == os.path.join("artifacts", "configs")
assert sorted(os.listdir(root)) == ["config.yaml"]
assert os.path.basename(downloaded) == "configs:v0"
with open(os.path.join(root, "config.yaml"), "w") as f:
    f.write("lr: 0.2\n")
try:
    artifact.verify(root)
    verified_changed = True
except ValueError:
    verified_changed = False
assert not verified_changed
